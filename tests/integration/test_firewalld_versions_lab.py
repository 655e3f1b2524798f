"""The firewalld releases operators run, side by side in the one lab: every release vendored in
../shared/vendor/firewalld (0.9 on both of its backends) beside Debian's own, each on a host of
the lab's table (tests/lab/lab.sh), built from source by tests/lab/firewalld-build.sh.

On every release, through the playbooks: check mode predicts exactly what apply then does,
with restricted egress and the Entra ID set; a re-run changes nothing; a reload changes
nothing; the permanent configuration is edited offline (the daemon stopped), then the daemon
starts with it; packets match the plan after each step. The other lab tests run on the same
table (reload and restart, the lockout guard, rollback on one host of each release, the Entra
ID refresher on an OIDC client on 0.9 with iptables). Per-release timings are written to
build/firewalld-releases.json."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from helpers import ROOT
from labkit import INVENTORY, RELEASES, lab, on, playbook, recap

pytestmark = pytest.mark.usefixtures("lab_up")

SOURCES = Path(os.environ.get("VORLAB_FIREWALLD_SOURCES", ROOT.parent / "shared" / "vendor" / "firewalld"))
MATRIX = json.loads((ROOT / "data" / "port_matrix.json").read_text())
RESTRICTED = ("-e", "host_firewall_egress=restricted")
TIMINGS = ROOT / "build" / "firewalld-releases.json"
APPLY_TASK = "TASK [vorstream.firewall.host_firewall : Enforce this host's plan]"
# One host per release (the first in the table), the ones the offline step edits.
ONE_EACH = {r: next(h for h in RELEASES if RELEASES[h] == r) for r in RELEASES.values()}

RELOAD = ("python3 -c 'import subprocess, time; t = time.monotonic(); "
          "subprocess.run([\"firewall-cmd\", \"-q\", \"--reload\"], check=True); print(time.monotonic() - t)'")

MGMT = ["10.231.0.1/32", "10.231.0.250/32"]

timings: dict = {}


def ok(r):
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    return r


def apply_results(out: str) -> dict:
    """{host: the apply task's result}, read from ansible-playbook -v's default output."""
    assert APPLY_TASK in out, out[-3000:]
    section = re.split(r"\n(?:TASK|PLAY RECAP) ", out.split(APPLY_TASK, 1)[1], maxsplit=1)[0]
    dec, res = json.JSONDecoder(), {}
    for m in re.finditer(r"^(?:ok|changed): \[([^\]]+)\] => ", section, re.M):
        res[m.group(1)] = dec.raw_decode(section, m.end())[0]
    return res


def groups_of(host: str) -> set:
    """The host's groups in the lab inventory."""
    out, group = set(), None
    for line in INVENTORY.read_text().splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line.strip()):
            group = m.group(1)
        elif group and line.split() and line.split()[0] == host:
            out.add(group)
    return out


def note(release: str, key: str, value):
    timings.setdefault(release, {})[key] = value
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")


def test_the_lab_runs_every_vendored_release():
    vendored = sorted(re.fullmatch(r"firewalld-(.+)\.tar\.gz", p.name).group(1) for p in SOURCES.glob("firewalld-*.tar.gz"))
    assert vendored, f"no firewalld release sources in {SOURCES}"
    in_lab = {r.removesuffix("-iptables") for r in RELEASES.values()}
    assert set(vendored) <= in_lab, f"releases not in the lab's table: {set(vendored) - in_lab}"
    debian = lab("exec", next(iter(RELEASES)), "dpkg-query", "-W", "-f=${Version}", "firewalld").stdout
    for h, r in RELEASES.items():
        want = debian.split("-")[0] if r.startswith("debian") else r.removesuffix("-iptables")
        assert on(h, "firewall-cmd --version").strip() == want, h
        backend = on(h, "sed -n 's/^FirewallBackend=//p' /etc/firewalld/firewalld.conf").strip() or "nftables"
        assert backend == ("iptables" if r.endswith("-iptables") else "nftables"), (h, backend)
    # 0.9 (RHEL 8) runs an OIDC client on its iptables backend: the Entra ID set and the
    # refresher go through the one release that cannot name a set as a destination.
    clients = {s["group"] for s in MATRIX["services"] if s["name"] in MATRIX["oidc_clients"]}
    assert any(r.startswith("0.") and r.endswith("-iptables") and groups_of(h) & clients for h, r in RELEASES.items())


def test_check_mode_predicts_apply_and_a_rerun_changes_nothing():
    # From whatever the lab holds (the demo's settings, open egress, after test_firewalld_lab).
    check = apply_results(ok(playbook("site.yml", "--check", "--diff", "-v", *RESTRICTED)).stdout)
    r = ok(playbook("site.yml", "-v", *RESTRICTED))
    done = apply_results(r.stdout)
    for h, rel in RELEASES.items():
        assert done[h]["firewalld_version"] == on(h, "firewall-cmd --version").strip(), done[h]
        assert done[h]["changes"], f"{h} ({rel}): restricted egress must change something"
        assert check[h]["changes"] == done[h]["changes"], f"{h} ({rel}): check mode predicted otherwise"
        assert done[h]["egress"]["mode"] == "restricted"
        note(rel, "converge_seconds", done[h]["seconds"])
        note(rel, "changes", len(done[h]["changes"]))
    again = ok(playbook("site.yml", "-v", *RESTRICTED))
    assert all(v["changed"] == 0 for v in recap(again.stdout).values()), recap(again.stdout)
    for h, res in apply_results(again.stdout).items():
        if h in RELEASES:
            note(RELEASES[h], "rerun_seconds", res["seconds"])
    v = ok(playbook("verify.yml", *RESTRICTED))
    assert re.search(r"\b0 mismatches", v.stdout), v.stdout[-3000:]


def test_a_reload_changes_nothing():
    for h, rel in RELEASES.items():
        took = on(h, RELOAD)
        note(rel, "reload_seconds", round(float(took), 2))
    r = ok(playbook("site.yml", "--check", "-v", *RESTRICTED))
    assert all(not res["changes"] for h, res in apply_results(r.stdout).items() if h in RELEASES), r.stdout[-3000:]


def test_offline_edits_then_the_daemon_starts_with_them():
    hosts = [h for r, h in ONE_EACH.items() if not r.startswith("debian")]   # Debian's: test_firewalld_lab
    limit = ("-l", ",".join(hosts))
    # Another management source (an ipset) and other DNS servers (the egress rules: on 0.9 one
    # rule per destination address, elsewhere a set), written with the daemon stopped.
    change = ("-e", json.dumps({"host_firewall_management_sources": MGMT + ["fd00:231::1/128"],
                                "host_firewall_dns_servers": ["10.231.0.1", "10.231.0.253"],
                                "host_firewall_backend": "firewalld"}))
    for h in hosts:
        on(h, "kill $(cat /run/firewalld.pid)")
    time.sleep(1)
    check = apply_results(ok(playbook("site.yml", "--check", "-v", *RESTRICTED, *limit, *change)).stdout)
    r = ok(playbook("site.yml", "-v", *RESTRICTED, *limit, *change))
    done = apply_results(r.stdout)
    for h in hosts:
        rel = RELEASES[h]
        assert done[h]["firewalld_running"] is False and done[h]["changes"], (h, done[h])
        assert check[h]["changes"] == done[h]["changes"], f"{h} ({rel}): offline check mode predicted otherwise"
        assert sorted(on(h, "firewall-offline-cmd --ipset=vorfw-mgmt-4 --get-entries").split()) == MGMT, h
        # The play's Entra ID refresh ran before the apply, with the daemon stopped: it re-applied
        # the recorded firewall (firewalld, offline), never built a second one of its own.
        assert "inet vorstream" not in on(h, "nft list tables"), f"{h} ({rel}): a stray nftables table"
        note(rel, "offline_seconds", done[h]["seconds"])
        note(rel, "offline_changes", len(done[h]["changes"]))
    lab("up")                                          # starts each daemon, as systemd would
    for h in hosts:
        assert sorted(on(h, "firewall-cmd --ipset=vorfw-mgmt-4 --get-entries").split()) == MGMT, h
        egress = on(h, "firewall-cmd --policy=vorfw-egress --list-rich-rules")
        assert "10.231.0.253" in egress or "10.231.0.253" in on(h, "firewall-cmd --ipset=vorfw-dns-4 --get-entries"), (h, egress)
    again = ok(playbook("site.yml", "--check", "-v", *RESTRICTED, *limit, *change))
    assert all(not apply_results(again.stdout)[h]["changes"] for h in hosts), again.stdout[-3000:]
    # Back to the demo's settings: packets match on every release after the restart.
    ok(playbook("site.yml", *RESTRICTED))
    v = ok(playbook("verify.yml", *RESTRICTED))
    assert re.search(r"\b0 mismatches", v.stdout), v.stdout[-3000:]
    # Open egress again (what the later tests start from), and nothing left to change.
    ok(playbook("site.yml"))
    r = ok(playbook("site.yml"))
    assert all(v["changed"] == 0 for v in recap(r.stdout).values()), recap(r.stdout)
