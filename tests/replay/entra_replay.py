#!/usr/bin/env python
"""Replay weekly service-tag files through one Entra ID state directory, the way the timer runs.

    tests/replay/entra_replay.py files DIR_OR_FILE... [--json] [-- REFRESHER OPTIONS]
        Microsoft's real files (ServiceTags_<Cloud>_<YYYYMMDD>.json), one state directory per
        cloud, one refresh per file in date order, with --now at the file's date.
    tests/replay/entra_replay.py scenarios [--only NAME] [--json] [-- REFRESHER OPTIONS]
        Synthetic sequences built from the real files in tests/fixtures/servicetags/microsoft,
        one per pattern seen in the field (see SCENARIOS).

Each refresh is `vorfw entra --state-dir DIR fetch --file F --cloud C --now T --format json`.
After every step the harness reads the effective list (prefixes.txt) and reports, per sequence:

- refused: refreshes that failed; `unexpected` counts refusals of genuine files (must be 0 for
  the real files and for every genuine file of a scenario);
- missing: prefix-weeks in which a prefix published by a genuine file in the last 14 days was
  not in the effective list (must be 0);
- overdue: prefix-weeks in which a prefix was still allowed although the policy's bound had
  passed since its last appearance: the grace period since its first absence *and* hold-refreshes
  accepted files without it (must be 0);
- admitted: prefix-weeks in which the effective list held a prefix no genuine file ever published (a hostile file
  let through; must be 0);
- altered: refusals after which the state directory (all but status.json) was not
  byte-identical to before (must be 0);
- held: refreshes that ended with removals held; max_days: the longest a prefix stayed allowed
  after its last appearance.

Exit 0 when every sequence meets the must-be-0 figures, 1 otherwise. Standard library only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
BASE = ROOT / "tests" / "fixtures" / "servicetags" / "microsoft"
VORFW = pathlib.Path(os.environ.get("VORFW", ROOT / "bin" / "vorfw"))
NAME = re.compile(r"ServiceTags_(Public|AzureGovernment|China)_(\d{8})\.json$")
CLOUD_ARG = {"Public": "public", "AzureGovernment": "azure-government", "China": "china"}
TAG = "AzureActiveDirectory"
DAY = dt.timedelta(days=1)
WEEK = 7 * DAY
WINDOW = 14 * DAY          # "published in the last 14 days"
GRACE = 14 * DAY           # the refresher's default; --grace in the options changes it
HOLD_REFRESHES = 4         # the refresher's default; --hold-refreshes changes it


@dataclass
class Step:
    when: dt.datetime
    doc: dict | None = None          # a document to write, or
    path: pathlib.Path | None = None  # an existing file
    genuine: bool = True             # published by Microsoft (False: a hostile or broken file)
    label: str = ""
    compact: bool = False            # write the document without indentation


@dataclass
class Result:
    name: str
    steps: int = 0
    accepted: int = 0
    refused: int = 0
    unexpected: int = 0
    missing: int = 0
    overdue: int = 0
    admitted: int = 0
    altered: int = 0
    held: int = 0
    max_days: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not (self.unexpected or self.missing or self.overdue or self.admitted or self.altered)


def published(doc: dict) -> set[str]:
    for t in doc["values"]:
        if t["name"] == TAG:
            return {str(ipaddress.ip_network(p.strip())) for p in t["properties"]["addressPrefixes"]}
    return set()


def snapshot(d: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file() and p.name != "status.json"} if d.exists() else {}


def replay(name: str, cloud: str, steps: list[Step], options: list[str]) -> Result:
    grace = GRACE
    hold = HOLD_REFRESHES
    for i, o in enumerate(options):
        if o == "--grace":
            grace = dt.timedelta(seconds=_seconds(options[i + 1]))
        if o == "--hold-refreshes":
            hold = int(options[i + 1])
    res = Result(name)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="entra-replay-") as tmp:
        state = pathlib.Path(tmp) / "state"
        history: list[tuple[dt.datetime, set[str]]] = []   # genuine files seen: (when, published)
        accepted: list[tuple[dt.datetime, set[str]]] = []  # accepted genuine files
        ever: set[str] = set()
        for n, s in enumerate(steps):
            if s.doc is not None:
                path = pathlib.Path(tmp) / f"ServiceTags_{s.doc['cloud']}_{s.when:%Y%m%d}.json"
                path.write_text(json.dumps(s.doc, separators=(",", ":")) if s.compact else json.dumps(s.doc, indent=2))
                doc = s.doc
            else:
                path = s.path
                doc = json.loads(path.read_bytes().decode("utf-8-sig"))
            pub = published(doc) if s.genuine else set()
            before = snapshot(state)
            r = subprocess.run([str(VORFW), "entra", "--state-dir", str(state), "fetch", "--file", str(path),
                                "--cloud", cloud, "--now", f"{s.when:%Y-%m-%dT%H:%M:%SZ}", "--format", "json",
                                *options], capture_output=True, text=True, check=False)
            res.steps += 1
            if s.genuine:
                history.append((s.when, pub))
                ever |= pub
            if r.returncode != 0:
                res.refused += 1
                if s.genuine:
                    res.unexpected += 1
                    res.notes.append(f"step {n} ({s.label or path.name}) refused: {r.stderr.strip()[:300]}")
                if snapshot(state) != before:
                    res.altered += 1
                    res.notes.append(f"step {n} ({s.label or path.name}): a refusal changed the state")
            else:
                res.accepted += 1
                if s.genuine:
                    accepted.append((s.when, pub))
                try:
                    if json.loads(r.stdout)["prefixes"].get("held", 0):
                        res.held += 1
                except (ValueError, KeyError):
                    res.notes.append(f"step {n}: no JSON report")
            eff_path = state / "prefixes.txt"
            effective = set(eff_path.read_text().split()) if eff_path.exists() else set()
            # Published by a genuine file in the last 14 days, yet not allowed.
            recent = set().union(*(p for w, p in history if s.when - w < WINDOW)) if history else set()
            lost = recent - effective
            if lost:
                res.missing += len(lost)
                res.notes.append(f"step {n} ({s.when:%Y-%m-%d}): {len(lost)} recent prefix(es) not allowed, e.g. {sorted(lost)[:3]}")
            # Allowed, but never published by a genuine file.
            bad = effective - ever
            if bad:
                res.admitted += len(bad)
                res.notes.append(f"step {n}: {len(bad)} prefix(es) no genuine file published, e.g. {sorted(bad)[:3]}")
            # Allowed past the policy's bound since the last appearance.
            for p in effective & ever:
                last = max((i for i, (_when, q) in enumerate(accepted) if p in q), default=None)
                if last is None:
                    continue
                since_last = s.when - accepted[last][0]
                res.max_days = max(res.max_days, since_last / DAY)
                without = accepted[last + 1:]
                if len(without) >= hold and s.when - without[0][0] >= grace:
                    res.overdue += 1
                    if res.overdue <= 3:
                        res.notes.append(f"step {n} ({s.when:%Y-%m-%d}): {p} still allowed {since_last.days} days "
                                         f"after its last appearance, {len(without)} files without it")
    res.seconds = time.monotonic() - t0
    return res


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+)\s*([smhdw]?)", text.strip())
    if not m:
        raise SystemExit(f"entra_replay: cannot read the duration {text!r}")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


# ---- real files ---------------------------------------------------------------------------

def real_sequences(paths: list[pathlib.Path]) -> dict[str, list[Step]]:
    files: list[pathlib.Path] = []
    for p in paths:
        files += sorted(p.glob("ServiceTags_*.json")) if p.is_dir() else [p]
    by_cloud: dict[str, list[Step]] = {}
    for f in files:
        m = NAME.search(f.name)
        if not m:
            raise SystemExit(f"entra_replay: {f} is not named ServiceTags_<Cloud>_<YYYYMMDD>.json")
        when = dt.datetime.strptime(m.group(2), "%Y%m%d").replace(hour=12, tzinfo=dt.timezone.utc)
        by_cloud.setdefault(m.group(1), []).append(Step(when, path=f, label=f.name))
    for steps in by_cloud.values():
        steps.sort(key=lambda s: s.when)
    return by_cloud


# ---- synthetic sequences from the real files ----------------------------------------------

def base(name: str) -> dict:
    return json.loads((BASE / name).read_bytes().decode("utf-8-sig"))


def with_list(doc: dict, change_number: int, prefixes, sort: bool = True) -> dict:
    d = json.loads(json.dumps(doc))
    d["changeNumber"] = change_number
    for t in d["values"]:
        if t["name"] == TAG:
            t["properties"]["addressPrefixes"] = sorted(prefixes, key=_key) if sort else list(prefixes)
    return d


def _key(p: str):
    n = ipaddress.ip_network(p)
    return (n.version, n)


def pool(n: int, start: str = "40.90.0.0") -> list[str]:
    """n plausible public /28s that no real list holds (never contacted: replay only)."""
    base_addr = int(ipaddress.IPv4Address(start))
    return [f"{ipaddress.IPv4Address(base_addr + 16 * i)}/28" for i in range(n)]


def t0(date: str) -> dt.datetime:
    return dt.datetime.strptime(date, "%Y-%m-%d").replace(hour=6, tzinfo=dt.timezone.utc)


def weekly(doc: dict, start: dt.datetime, first_cn: int, lists: list[list[str]]) -> list[Step]:
    return [Step(start + i * WEEK, doc=with_list(doc, first_cn + i, l), label=f"week {i}") for i, l in enumerate(lists)]


def churn(initial: list[str], weeks: int, add: int, remove: int, fresh: list[str]) -> list[list[str]]:
    """Weekly lists: each week `add` new prefixes from `fresh` and `remove` of the oldest."""
    cur, lists, it = list(initial), [list(initial)], iter(fresh)
    for _week in range(weeks):
        cur = cur[remove:] + [next(it) for _i in range(add)]
        lists.append(list(cur))
    return lists


def scenario_real() -> dict[str, tuple[str, list[Step]]]:
    return {f"real-{c.lower()}": (CLOUD_ARG[c], steps) for c, steps in real_sequences([BASE]).items()}


def scenario_china_mass_removal() -> list[Step]:
    """July 2023: the China cloud dropped 12 of 46 prefixes (26 %); then a year of normal weeks."""
    doc = base("ServiceTags_China_20260720.json")
    full = sorted(published(doc), key=_key)
    lists = [full, full[12:]]
    fresh = iter(pool(40, "40.72.0.0"))
    cur = full[12:]
    for w in range(52):
        if w % 4 == 0:
            cur = cur + [next(fresh)]
        if w % 6 == 5:
            cur = cur[1:]
        lists.append(list(cur))
    return weekly(doc, t0("2023-06-26"), 250, lists)


def scenario_gap() -> list[Step]:
    """A host off for eleven weeks comes back to a 16 % removal, then normal weeks."""
    doc = base("ServiceTags_Public_20250714.json")
    full = sorted(published(doc), key=_key)
    lists = churn(full, 30, add=3, remove=3, fresh=pool(200))
    steps = weekly(doc, t0("2025-01-06"), 340, lists)
    return steps[:4] + steps[15:]     # weeks 4-14 never reach the host (timer Persistent=true)


def scenario_backwards() -> list[Step]:
    """changeNumber 102 -> 88 with the same list (April 2020), 105 -> 97 with 12 new prefixes
    (August 2020)."""
    doc = base("ServiceTags_Public_20250714.json")
    full = sorted(published(doc), key=_key)
    fresh = iter(pool(60))
    cur, steps, when = list(full), [], t0("2020-03-30")
    numbers = [100, 101, 102, 88] + list(range(89, 106)) + [97] + list(range(98, 118))
    for i, cn in enumerate(numbers):
        if cn == 97 and i > 3:
            cur = cur[1:] + [next(fresh) for _i in range(12)]   # and one removal, held
        elif i % 5 == 4:
            cur = cur[1:] + [next(fresh)]
        steps.append(Step(when + i * WEEK, doc=with_list(doc, cn, cur), label=f"cn {cn}"))
    return steps


def scenario_restored() -> list[Step]:
    """Removals restored the next week: a mass removal (held) and a small one (grace)."""
    doc = base("ServiceTags_Public_20250721.json")
    full = sorted(published(doc), key=_key)
    lists = [full, full[30:], full, full[2:], full] + [full] * 6
    return weekly(doc, t0("2025-07-21"), 363, lists)


def with_bad_file(make_bad, label: str, compact: bool = False) -> list[Step]:
    """Eight normal weeks from the real public list, and a hostile or broken file (not genuine)
    a day before week 3: `make_bad(doc, week-3 list)` builds it."""
    doc = base("ServiceTags_Public_20250714.json")
    full = sorted(published(doc), key=_key)
    lists = churn(full, 8, add=1, remove=1, fresh=pool(20))
    steps = weekly(doc, t0("2025-07-14"), 362, lists)
    bad = make_bad(doc, lists[3])
    steps.insert(3, Step(steps[3].when - DAY, doc=bad, genuine=False, compact=compact, label=label))
    return steps


def scenario_hostile() -> list[Step]:
    return with_bad_file(lambda doc, week: with_list(doc, 365, week + ["0.0.0.0/0", "::/0"]), "adds 0.0.0.0/0 and ::/0")


def scenario_change_number_max() -> list[Step]:
    return with_bad_file(lambda doc, week: with_list(doc, 2**64 - 1, week + pool(1, "40.99.0.0")), "changeNumber 2^64-1")


def scenario_huge() -> list[Step]:
    start = int(ipaddress.IPv4Address("40.0.0.0"))
    prefixes = (f"{ipaddress.IPv4Address(start + i)}/32" for i in range(900_000))
    return with_bad_file(lambda doc, _: with_list(doc, 365, prefixes, sort=False), "900,000 prefixes", compact=True)


SCENARIOS = {
    "china-26pct-removal": ("china", scenario_china_mass_removal),
    "eleven-week-gap": ("public", scenario_gap),
    "backwards-change-number": ("public", scenario_backwards),
    "removal-restored": ("public", scenario_restored),
    "hostile-default-route": ("public", scenario_hostile),
    "change-number-max": ("public", scenario_change_number_max),
    "huge-900k": ("public", scenario_huge),
}


def report(results: list[Result], as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.__dict__ | {"ok": r.ok()} for r in results], indent=2))
        return
    cols = ("sequence", "steps", "accepted", "refused", "unexpected", "held", "missing", "overdue", "admitted",
            "altered", "max_days", "seconds")
    print(" ".join(f"{c:>10}" if i else f"{c:<26}" for i, c in enumerate(cols)))
    for r in results:
        vals = [r.name, r.steps, r.accepted, r.refused, r.unexpected, r.held, r.missing, r.overdue, r.admitted,
                r.altered, f"{r.max_days:.0f}", f"{r.seconds:.1f}"]
        print(" ".join(f"{v:>10}" if i else f"{v:<26}" for i, v in enumerate(vals)) + ("" if r.ok() else "  FAIL"))
        for n in r.notes[:8]:
            print(f"    {n}")


def main(argv: list[str]) -> int:
    options: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, options = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("files", help="replay real files")
    f.add_argument("paths", nargs="+", type=pathlib.Path)
    f.add_argument("--json", action="store_true")
    s = sub.add_parser("scenarios", help="replay the synthetic sequences (and the real files in the repository)")
    s.add_argument("--only", action="append", choices=sorted(SCENARIOS) + ["real"])
    s.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if not VORFW.exists():
        print(f"entra_replay: {VORFW} is missing (make build)", file=sys.stderr)
        return 2
    results = []
    if a.cmd == "files":
        for cloud, steps in real_sequences(a.paths).items():
            results.append(replay(f"files-{cloud.lower()}", CLOUD_ARG[cloud], steps, options))
    else:
        if not a.only or "real" in a.only:
            for name, (cloud, steps) in scenario_real().items():
                results.append(replay(name, cloud, steps, options))
        for name, (cloud, build) in SCENARIOS.items():
            if not a.only or name in a.only:
                results.append(replay(name, cloud, build(), options))
    report(results, a.json)
    return 0 if all(r.ok() for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
