#!/usr/bin/env python
"""Planning benchmark: 10,000 hosts spread over VOR Stream's groups.

Measured side by side in one run, each the median of several runs:
  - `ansible-inventory --list` on the inventory (what any Ansible run pays to read it),
  - `vorfw plan --inventory inv.json --format summary` (planning every host from that JSON),
  - `vorfw plan -i inv.ini --format summary` (end to end: runs ansible-inventory itself).
Prints absolute times and the ratio of planning to reading the inventory with Ansible.

Then the contract the modules consume, `vorfw plan --format json`, at 1,000 and 3,000 hosts
(BENCH_JSON_HOSTS): bytes, time and peak RSS, beside `ansible-inventory --list` of the same
inventory. Before the set table (each rule spelling out its peers) these were 134 MB / 604 MB
RSS at 1,000 hosts and 1.16 GB / 5.1 GB at 3,000 (measured 2026-12-01).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VORFW = ROOT / "bin" / "vorfw"
ENV = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
N = int(os.environ.get("BENCH_HOSTS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))

# How many hosts each group gets; compute takes the rest. SDK overlaps compute.
FIXED = {"consul": 5, "super": 2, "django": 2, "web": 2, "rabbitmq": 3, "vault": 3, "postgres": 2}


def inventory(n: int) -> str:
    lines, i = [], 0

    def addr(i):
        return f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}"

    groups: dict[str, list[str]] = {g: [] for g in FIXED}
    groups["compute"] = []
    for g, k in FIXED.items():
        for _i in range(k):
            groups[g].append(f"{g}{i} ansible_host={addr(i)}")
            i += 1
    while i < n:
        groups["compute"].append(f"compute{i} ansible_host={addr(i)}")
        i += 1
    for g, hs in groups.items():
        lines.append(f"[{g}]")
        lines.extend(hs)
    lines.append("[consul_ui]")
    lines.append(groups["consul"][0].split()[0])
    lines.append("[sdk]")
    lines.extend(h.split()[0] for h in groups["compute"][: n // 20])
    lines.append("[all:vars]")
    lines.append("host_firewall_admin_sources='[\"192.0.2.0/24\"]'")
    lines.append("host_firewall_management_sources='[\"192.0.2.10/32\"]'")
    return "\n".join(lines) + "\n"


def timed(cmd, runs=RUNS, stdout=subprocess.DEVNULL):
    times = []
    for _run in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=ENV, stdout=stdout)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measured(cmd, out_path):
    """Wall time, peak RSS of that one child (MB, from wait4) and bytes written."""
    t = time.perf_counter()
    with open(out_path, "wb") as f:
        p = subprocess.Popen([str(c) for c in cmd], env=ENV, stdout=f)
        _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{cmd} failed ({status})")
    return wall, usage.ru_maxrss / 1024, Path(out_path).stat().st_size


def contract(d: Path) -> bool:
    ok = True
    for n in [int(x) for x in os.environ.get("BENCH_JSON_HOSTS", "1000,3000").split(",") if x]:
        ini = d / f"inv{n}.ini"
        ini.write_text(inventory(n))
        js = d / f"inv{n}.json"
        t_ai, _rss, _size = measured(["ansible-inventory", "-i", ini, "--list"], js)
        t, rss, size = measured([VORFW, "plan", "--inventory", js, "--format", "json"], d / "plan.json")
        print(f"{n:6d} hosts: plan --format json {size / 1e6:8.2f} MB {t * 1000:7.0f} ms  peak RSS {rss:6.0f} MB"
              f"  | ansible-inventory --list {t_ai * 1000:6.0f} ms  ratio {t / t_ai:5.2f}x")
        before = {1000: 133_903_881, 3000: 1_158_918_475}.get(n)
        if before:
            print(f"{'':13}{before / size:6.0f}x smaller than before the set table ({before / 1e6:.0f} MB)")
            ok &= before / size >= 20
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        ini = Path(d) / "inv.ini"
        ini.write_text(inventory(N))
        js = Path(d) / "inv.json"
        with js.open("w") as f:
            subprocess.run(["ansible-inventory", "-i", ini, "--list"], check=True, env=ENV, stdout=f)
        out = subprocess.run([VORFW, "plan", "--inventory", js, "--format", "summary"], check=True, env=ENV,
                             capture_output=True, text=True).stdout
        print(f"inventory: {N} hosts; {out.strip().splitlines()[-1].lstrip('# ')}")
        t_ai = timed(["ansible-inventory", "-i", ini, "--list"], runs=max(1, RUNS // 2))
        t_plan = timed([VORFW, "plan", "--inventory", js, "--format", "summary"])
        t_e2e = timed([VORFW, "plan", "-i", ini, "--format", "summary"], runs=max(1, RUNS // 2))
        print(f"ansible-inventory --list           {t_ai * 1000:8.0f} ms")
        print(f"vorfw plan (from inventory JSON)   {t_plan * 1000:8.0f} ms")
        print(f"vorfw plan -i (end to end)         {t_e2e * 1000:8.0f} ms")
        print(f"ratio planning / ansible-inventory {t_plan / t_ai:8.2f}x")
        ok = t_plan < 1.0
        print(f"target: plan {N} hosts well under 1 s: {'met' if ok else 'MISSED'} ({t_plan * 1000:.0f} ms)")
        small = contract(Path(d))
        print(f"target: the JSON contract at least 20x smaller: {'met' if small else 'MISSED'}")
        return 0 if ok and small else 1


if __name__ == "__main__":
    sys.exit(main())
