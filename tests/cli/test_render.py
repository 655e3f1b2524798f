"""`vorfw render`: what each backend would own on each host of the example inventories, against
golden files (tests/golden/render), so a change in what a backend writes shows up as a
reviewable diff. Regenerate with `VORFW_UPDATE_GOLDEN=1 make test-cli` and read the diff."""
from __future__ import annotations

import json
import os

import pytest

from helpers import ROOT, run

GOLDEN = ROOT / "tests" / "golden" / "render"
INVENTORIES = ["multi-tier.yml", "single-tier.ini"]
BACKENDS = ["firewalld", "ufw", "nftables"]
# What only a host knows, fixed: the controller, an Entra ID list, a resolver.
FACTS = ["--controller", "198.51.100.250", "--entra-prefix", "20.190.128.0/18,2603:1006:2000::/48",
         "--nameserver", "192.0.2.53"]


def hosts(vorfw, inv):
    r = run([vorfw, "plan", "-i", ROOT / "examples" / inv, "--format", "json"], check=True)
    return sorted(json.loads(r.stdout)["hosts"])


@pytest.mark.parametrize("inv,backend", [(i, b) for i in INVENTORIES for b in BACKENDS])
def test_renderings_match_the_golden_files(vorfw, inv, backend):
    # Hosts come from the plan, so a missing golden file fails below, loudly.
    names = hosts(vorfw, inv)
    assert names, inv
    update = os.environ.get("VORFW_UPDATE_GOLDEN") == "1"
    for host in names:
        r = run([vorfw, "render", "-i", ROOT / "examples" / inv, "--backend", backend, "--host", host, *FACTS])
        assert r.returncode == 0, r.stderr
        golden = GOLDEN / inv / f"{host}.{backend}"
        if update:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(r.stdout)
        assert golden.is_file(), f"{golden} is missing: run with VORFW_UPDATE_GOLDEN=1 and review it"
        assert r.stdout == golden.read_text(), f"{inv} {host} {backend}: rendering differs from {golden}"


def test_render_is_what_apply_would_own(vorfw):
    """The nftables rendering is the script the apply module loads: one table of ours, sets per
    family, the lockout guard for the controller only when management sources are unset."""
    inv = ROOT / "examples" / "single-tier.ini"
    [host] = hosts(vorfw, "single-tier.ini")
    out = run([vorfw, "render", "-i", inv, "--backend", "nftables", "--host", host, *FACTS], check=True).stdout
    assert out.startswith(f"# vorstream.firewall: nftables on host {host} (table inet vorstream)\n")
    assert "table inet vorstream {" in out and "policy drop;" in out


def test_render_refuses_unknown_hosts_and_backends(vorfw):
    inv = ROOT / "examples" / "multi-tier.yml"
    r = run([vorfw, "render", "-i", inv, "--backend", "nftables", "--host", "nosuch"])
    assert r.returncode == 1 and "--host: host nosuch is not in the inventory" in r.stderr
    r = run([vorfw, "render", "-i", inv, "--backend", "pf", "--host", "pg1"])
    assert r.returncode == 2 and "invalid value 'pf'" in r.stderr


def test_look_alike_groups_get_two_sets_on_every_backend(vorfw, tmp_path):
    """Groups `dc1.web` and `dc1_web_61076b` once shared one firewalld ipset (the second took the
    first's hashed name), so one group got the other's port. Each keeps its own set and port."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n"
        "  children:\n"
        "    dc1.web: {hosts: {w1: {ansible_host: 10.0.0.4}}}\n"
        "    dc1_web_61076b: {hosts: {w2: {ansible_host: 10.0.0.5}}}\n"
        "    web:\n"
        "      hosts:\n"
        "        w3:\n"
        "          ansible_host: 10.0.0.6\n"
        "          host_firewall_extra_rules:\n"
        "            - {id: a, group: web, port: 9001, source_group: dc1.web, purpose: A}\n"
        "            - {id: b, group: web, port: 9002, source_group: dc1_web_61076b, purpose: B}\n"
    )
    fw = run([vorfw, "render", "-i", inv, "--backend", "firewalld", "--host", "w3"], check=True).stdout
    sets = {}
    for line in fw.splitlines():
        if line.startswith("ipset vorfw-g-dc1"):
            name, entry = line.split()[1], line.split()[-1]
            sets.setdefault(name, set()).add(entry)
    assert sorted(sets.values(), key=sorted) == [{"10.0.0.4/32"}, {"10.0.0.5/32"}], fw
    by_port = {l.split('port="')[1].split('"')[0]: l.split('ipset="')[1].split('"')[0]
               for l in fw.splitlines() if 'port="900' in l}
    assert sets[by_port["9001"]] == {"10.0.0.4/32"} and sets[by_port["9002"]] == {"10.0.0.5/32"}, fw
    nft = run([vorfw, "render", "-i", inv, "--backend", "nftables", "--host", "w3"], check=True).stdout
    names = [l.split()[1] for l in nft.splitlines() if l.strip().startswith("set g-dc1")]
    assert len(names) == len(set(names)) == 2, nft


def test_one_extra_rule_id_defined_twice_fails_before_any_host(vorfw, tmp_path):
    inv = tmp_path / "hosts.yml"
    rule = "{{id: x, group: web, port: {}, source_group: django, purpose: P}}"
    inv.write_text(
        "all:\n"
        "  children:\n"
        "    django: {hosts: {d1: {ansible_host: 10.0.0.3}}}\n"
        "    web:\n"
        "      hosts:\n"
        f"        w3: {{ansible_host: 10.0.0.6, host_firewall_extra_rules: [{rule.format(9001)}]}}\n"
        f"        w4: {{ansible_host: 10.0.0.7, host_firewall_extra_rules: [{rule.format(9002)}]}}\n"
    )
    r = run([vorfw, "plan", "-i", inv, "--format", "json"])
    assert r.returncode == 1 and r.stdout == ""
    assert "host w4: host_firewall_extra_rules: id 'x' is defined differently on host w3" in r.stderr, r.stderr
