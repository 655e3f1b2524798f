"""ufw and nftables hosts beside firewalld in the same lab: the same plan, the same guarantees.
Runs after test_firewalld_lab.py on the same (converged) lab."""
from __future__ import annotations

import json
import re
import time

import pytest

from labkit import BACKENDS, HOSTS, on, playbook, recap, snapshot

pytestmark = pytest.mark.usefixtures("lab_up")

UFW = [h for h in HOSTS if BACKENDS[h] == "ufw"]
NFT = [h for h in HOSTS if BACKENDS[h] == "nftables"]
EXTRA = json.dumps({"host_firewall_extra_rules": [{"id": "bench-4444", "group": "all", "port": 4444, "sources": ["192.0.2.0/24"]}]})


def ok(r):
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return r


def test_the_lab_mixes_backends():
    assert len(UFW) >= 2 and len(NFT) >= 2 and len(HOSTS) - len(UFW) - len(NFT) >= 6


def test_each_backend_was_chosen_and_enforced():
    r = ok(playbook("site.yml", "-v"))
    backends = dict(re.findall(r'ok: \[(\S+)\] => \{.*?"backend": "(\w+)"', r.stdout))
    assert {h: backends.get(h) for h in HOSTS} == BACKENDS
    for h in UFW:
        status = on(h, "ufw status verbose")
        assert "Status: active" in status and "Default: deny (incoming)" in status, status
        assert "vorfw:" in status
    for h in NFT:
        table = on(h, "nft list table inet vorstream")
        assert "policy drop" in table and "@g-all-4" in table
        assert "vorstream" not in on(h, "firewall-cmd --state 2>&1 || true")


def test_operators_own_rules_survive_on_every_backend():
    for h in UFW:
        on(h, "ufw allow 2222/tcp >/dev/null")
    for h in NFT:
        on(h, "nft add table inet operator && nft add chain inet operator mine && nft add rule inet operator mine tcp dport 2222 counter")
    ok(playbook("site.yml"))
    r = ok(playbook("site.yml"))
    assert all(v["changed"] == 0 for v in recap(r.stdout).values()), recap(r.stdout)
    for h in UFW:
        assert re.search(r"^2222/tcp\s+ALLOW", on(h, "ufw status"), re.M)
    for h in NFT:
        assert "tcp dport 2222 counter" in on(h, "nft list table inet operator")


def test_check_mode_on_every_backend_reports_and_applies_nothing():
    before = snapshot()
    r = ok(playbook("site.yml", "--check", "--diff", "-e", EXTRA))
    rc = recap(r.stdout)
    assert all(rc[h]["changed"] == 1 for h in HOSTS), rc
    assert "4444" in r.stdout
    assert snapshot() == before


def test_purge_of_stale_owned_rules_on_every_backend():
    ok(playbook("site.yml", "-e", EXTRA))
    for h in UFW:
        assert "4444/tcp" in on(h, "ufw status")
    for h in NFT:
        assert "4444" in on(h, "nft list table inet vorstream")
    ok(playbook("site.yml"))
    for h in UFW:
        assert "4444" not in on(h, "ufw status")
        assert re.search(r"^2222/tcp\s+ALLOW", on(h, "ufw status"), re.M)
    for h in NFT:
        assert "4444" not in on(h, "nft list table inet vorstream")


def test_reload_and_reboot_keep_the_rules():
    for h in UFW:
        on(h, "ufw reload >/dev/null")
    for h in NFT:
        # A reboot, as far as nftables knows: empty kernel ruleset, then the boot configuration.
        on(h, "nft flush ruleset && nft -f /etc/nftables.conf")
    ok(playbook("verify.yml", "-e", "verify_probe_management=true"))
    r = ok(playbook("site.yml"))
    assert all(v["changed"] == 0 for v in recap(r.stdout).values()), recap(r.stdout)


def test_two_active_managers_is_an_error_not_a_guess():
    before = snapshot(["web1"])
    # ufw switched on (its persistent switch) on a host where firewalld runs.
    on("web1", "sed -i 's/^ENABLED=no/ENABLED=yes/' /etc/ufw/ufw.conf")
    try:
        r = playbook("site.yml", "-l", "web1")
        assert r.returncode != 0
        assert "host web1: both firewalld and ufw are active" in r.stdout, r.stdout[-2000:]
    finally:
        on("web1", "sed -i 's/^ENABLED=yes/ENABLED=no/' /etc/ufw/ufw.conf")
    r = playbook("site.yml", "-l", "web1", "-e", "host_firewall_backend=nftables")
    assert r.returncode != 0
    assert "host web1: host_firewall_backend is nftables but firewalld is active" in r.stdout, r.stdout[-2000:]
    assert snapshot(["web1"]) == before


def test_covering_verify_proves_every_verdict_with_fewer_probes():
    t0 = time.monotonic()
    full = ok(playbook("verify.yml"))
    t_full = time.monotonic() - t0
    t0 = time.monotonic()
    cover = ok(playbook("verify.yml", "-e", "verify_coverage=covering"))
    t_cover = time.monotonic() - t0
    for r in (full, cover):
        assert re.search(r"\b0 mismatches", r.stdout), r.stdout[-3000:]
    n_full = int(re.search(r'"msg": "full: (\d+) probes', full.stdout).group(1))
    m = re.search(r'"msg": "covering: (\d+) probes of the (\d+) of full coverage; each of (\d+) targets', cover.stdout)
    assert m, cover.stdout[-3000:]
    probes, of, targets = map(int, m.groups())
    assert of == n_full and probes < n_full and targets == len(HOSTS), m.groups()
    print(f"verify on {len(HOSTS)} hosts: full {n_full} probes {t_full:.1f} s; covering {probes} probes {t_cover:.1f} s")
