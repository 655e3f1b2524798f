"""Commit-confirm on one host of each backend: a change that cuts the controller off is rolled
back by the host itself within the timeout; a normal change is confirmed over a new connection
and leaves no watchdog. Runs last, on the converged lab (the demo has commit-confirm on)."""
from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import yaml

from helpers import ROOT
from labkit import BACKENDS, DEMO, HOSTS, RELEASES, lab, on, playbook, snapshot

pytestmark = pytest.mark.usefixtures("lab_up")

# The first host of each backend, and of each firewalld release the lab runs.
ONE = list(dict.fromkeys([next(h for h in HOSTS if BACKENDS[h] == b) for b in ("firewalld", "ufw", "nftables")]
                         + [next(h for h in RELEASES if RELEASES[h] == r) for r in RELEASES.values()]))
LIMIT = ",".join(ONE)
TIMEOUT = 15
DEMO_TIMEOUT = yaml.safe_load(DEMO.read_text())["all"]["vars"]["host_firewall_confirm_timeout"]
# SSH only from an address that is not the controller's: the lockout guard is off (management
# sources are set), so nothing keeps the controller's new connections open.
CUT = json.dumps({"host_firewall_management_sources": ["192.0.2.1/32"], "host_firewall_confirm_timeout": TIMEOUT})
EXTRA = json.dumps({"host_firewall_extra_rules": [{"id": "confirm-4445", "group": "all", "port": 4445, "sources": ["192.0.2.0/24"]}]})


def watchdogs() -> list[str]:
    """Watchdog processes anywhere on the machine (the lab's hosts share its PID namespace)."""
    r = subprocess.run(["pgrep", "-af", "--", "--vorfw-watchdog"], capture_output=True, text=True, check=False)
    return r.stdout.splitlines()


def settled(host) -> dict:
    return json.loads(on(host, "cat /etc/vorstream-firewall/confirm.json"))


def firewall(hosts) -> dict:
    """The hosts' firewall state and files, without commit-confirm's own record of outcomes
    and firewalld's backups of each file's previous version (*.old)."""

    def keep(section):
        path = section.split("\n", 1)[0]
        return not (path.endswith(".old") or path.endswith("/confirm.json"))

    def norm(host, section):
        # A rich rule removed and put back comes back at the end of its zone's list; the order
        # of firewalld's accept rules (one priority) changes nothing.
        return sorted(section.splitlines()) if BACKENDS[host] == "firewalld" else section

    state = {h: [norm(h, x) for x in s.split("\n## ") if keep(x)] for h, s in snapshot(hosts).items()}
    for h in hosts:
        if BACKENDS[h] == "ufw":
            # ufw's own start and iptables-restore fill its (unused) limit chains differently:
            # the kernel state that matters is the chains holding the rules.
            state[h][0] = on(h, "iptables -S ufw-user-input; ip6tables -S ufw6-user-input; ufw status verbose")
    return state


def ok(r):
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return r


def test_a_normal_change_is_confirmed_over_a_new_connection_and_leaves_no_watchdog():
    r = ok(playbook("site.yml", "-l", LIMIT, "-e", EXTRA, "-v"))
    confirmed = set(re.findall(r'changed: \[(\S+)\] => \{.*?"confirmed": true', r.stdout))
    assert confirmed == set(ONE), r.stdout[-3000:]
    # Each result says how long the confirm took, within the demo's timeout.
    took = [float(t) for t in re.findall(r'"confirm_seconds": ([0-9.]+)', r.stdout)]
    assert len(took) == len(ONE) and all(0 < t < DEMO_TIMEOUT for t in took), took
    assert watchdogs() == []
    for h in ONE:
        s = settled(h)
        assert s["outcome"] == "confirmed" and s["host"] == h, s
        assert on(h, "test -e /etc/vorstream-firewall/pending.json && echo pending || echo none").strip() == "none"
    # Nothing to change: nothing is armed, nothing to confirm.
    r = ok(playbook("site.yml", "-l", LIMIT, "-e", EXTRA, "-v"))
    assert '"confirmed"' not in r.stdout
    assert all(settled(h)["outcome"] == "disarmed" for h in ONE)
    assert watchdogs() == []


def test_a_change_that_cuts_the_controller_off_is_rolled_back_by_the_host():
    before = firewall(ONE)
    r = playbook("site.yml", "-l", LIMIT, "-e", CUT)
    assert r.returncode != 0
    for h in ONE:
        want = f"host {h}: commit-confirm: no new connection confirmed the change within {TIMEOUT} s"
        assert want in r.stdout, r.stdout[-4000:]
        assert re.search(rf"host {h}: .*the host rolled it back at \d\d:\d\d:\d\d UTC and is reachable again", r.stdout)
        s = settled(h)
        assert s["outcome"] == "rolled back", s
        # By the host, at its deadline (the host's poll is 200 ms; the lock and restore take less).
        assert 0 <= s["at"] - s["deadline"] < 3000, s
        assert any("put back /etc/vorstream-firewall/applied.json" in d for d in s["detail"]), s
    # Firewall, its files and the applied record exactly as before; SSH from the controller
    # works again over a new connection; no watchdog is left.
    assert firewall(ONE) == before
    for h in ONE:
        assert lab("ssh", h, "echo", "back").stdout.strip() == "back"
    assert watchdogs() == []


def test_the_host_rolls_back_when_the_apply_process_is_killed():
    """The apply, run on the host with a request that cuts SSH, killed once it has armed: once
    the pending change names its watchdog (killed between writing the pending file and starting
    the watchdog, nothing was applied yet, and the next change settles the file as abandoned)."""
    h = next(h for h in ONE if BACKENDS[h] == "nftables")
    before = firewall([h])
    record = json.loads(on(h, "cat /etc/vorstream-firewall/applied.json"))
    request = record["request"]
    request["inbound"] = [r for r in request["inbound"] if r["id"] != "management-ssh"]
    args = {"plan": request, "confirm_timeout": 6}
    binary = ROOT / "plugins" / "modules" / "__bin__" / "apply_x86_64"
    script = f"""
set -e
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cp {binary} "$d/apply"; cat > "$d/args"
"$d/apply" "$d/args" > "$d/out" & pid=$!
until grep -Eqs '"watchdog": ?[1-9]' /etc/vorstream-firewall/pending.json; do sleep 0.01; done
kill -9 $pid 2>/dev/null || true; wait $pid || true
echo killed
"""
    out = lab("exec", h, "sh", "-c", script, input=json.dumps(args)).stdout
    assert "killed" in out
    assert len(watchdogs()) == 1
    deadline = time.monotonic() + 6 + 5
    while watchdogs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert watchdogs() == []
    assert settled(h)["outcome"] == "rolled back", settled(h)
    assert firewall([h]) == before
    assert lab("ssh", h, "echo", "back").stdout.strip() == "back"
