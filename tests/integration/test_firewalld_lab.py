"""vorstream.firewall against real firewalld daemons in the namespace lab, driven by
ansible-playbook over SSH, proven with packets. Tests run in file order on one lab."""
from __future__ import annotations

import ipaddress
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import ROOT, browser_page, run
from labkit import BACKENDS, DEMO, HOSTS, INVENTORY, lab, on, playbook, recap, snapshot
from oracle import addresses, expected_flows, parse_seed

pytestmark = pytest.mark.usefixtures("lab_up")
FIREWALLD = [h for h in HOSTS if BACKENDS[h] == "firewalld"]

OPERATOR_RICH = 'rule family="ipv4" source address="192.0.2.5" port port="9999" protocol="tcp" accept'
RUNTIME_ONLY_RICH = 'rule family="ipv4" source address="192.0.2.66" drop'
REPORT = ROOT / "build" / "lab-report.html"   # what make demo writes too


def ok(r):
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return r


def test_converge_admits_exactly_the_plan():
    # An operator's own rules beforehand: permanent+runtime on django1, a runtime-only
    # (fail2ban-like) ban on pg1. They must survive everything that follows.
    on("django1", f"firewall-cmd -q --add-rich-rule='{OPERATOR_RICH}' && firewall-cmd -q --permanent --add-rich-rule='{OPERATOR_RICH}'"
                  " && firewall-cmd -q --add-port=7777/tcp && firewall-cmd -q --permanent --add-port=7777/tcp")
    on("pg1", f"firewall-cmd -q --add-rich-rule='{RUNTIME_ONLY_RICH}'")
    r = ok(playbook("site.yml"))
    assert all(v["failed"] == 0 and v["unreachable"] == 0 for v in recap(r.stdout).values())
    # Warnings describe the state after the run: the services the demo removes
    # (host_firewall_remove_zone_services) are not reported as open; the operator's port is.
    said = " ".join((r.stdout + r.stderr).split())
    assert not re.search(r"also admits services [^(]*(ssh|dhcpv6-client)", said), said[-3000:]
    assert "zone public also admits ports 7777/tcp from anywhere" in said, said[-3000:]
    # The apply task changed every host (the OIDC clients also got the Entra ID refresher).
    applied = re.search(r"TASK \[vorstream\.firewall\.host_firewall : Enforce this host's plan\].*?\n\n", r.stdout, re.S).group(0)
    assert sorted(re.findall(r"^changed: \[(\S+)\]", applied, re.M)) == sorted(HOSTS), applied
    v = ok(playbook("verify.yml", "-e", "verify_probe_management=true", "-e", f"verify_report={REPORT}"))
    totals = re.findall(r'"msg": "(\d+) required flows open, (\d+) forbidden flows blocked, (\d+) mismatches"', v.stdout)
    assert len(totals) == 1, v.stdout[-3000:]
    required, forbidden, mismatches = map(int, totals[0])
    assert required > 500 and forbidden > 2000 and mismatches == 0, totals
    # The sign-off report with these probe results, in a real browser: a node per host in the
    # diagram, the totals and a host x host matrix without a mismatch.
    with browser_page() as page:
        page.goto(REPORT.as_uri())
        assert set(page.eval_on_selector_all("svg#diagram g.host", "gs => gs.map(g => g.dataset.host)")) == set(HOSTS)
        assert f"{required} required flows open, {forbidden} forbidden flows blocked, 0 mismatches" in page.content()
        assert page.locator("#verify-matrix td.bad").count() == 0
        assert page.locator("#verify-matrix td").count() > len(HOSTS)
        assert page.errors == [] and page.dialogs == []
        page.screenshot(path=str(REPORT.with_suffix(".png")), full_page=True,
                        clip={"x": 0, "y": 0, "width": 1400, "height": 1400})


def probe_matrix():
    """From each namespace, every matrix port (and SSH, and one unused port) on every other host."""
    seed = parse_seed()
    ports = {(r["port"], p) for r in seed["internal"] for p in r["protocols"]}
    ports |= {(r["port"], "tcp") for r in seed["external"]} | {(22, "tcp"), (18080, "tcp"), (18080, "udp")}
    inv = json.loads(run(["ansible-inventory", "-i", INVENTORY, "-i", DEMO, "--list"], check=True).stdout)
    addrs = {h: [str(a) for a in addresses(h, inv["_meta"]["hostvars"][h])] for h in HOSTS}
    script = (Path(__file__).parent / "probe_ns.py").read_text()

    def from_host(src):
        targets = [[a, port, proto] for dst in HOSTS if dst != src for a in addrs[dst] for port, proto in sorted(ports)]
        out = lab("exec", src, "python3", "-c", script, input=json.dumps(targets)).stdout
        found = set()
        for dst_addr, port, proto, verdict in json.loads(out):
            dst = next(h for h in HOSTS if dst_addr in addrs[h])
            src_addr = next(a for a in addrs[src] if (":" in a) == (":" in dst_addr))
            found.add((dst, proto, port, str(ipaddress.ip_network(src_addr)), verdict != "filtered"))
        return found

    with ThreadPoolExecutor(len(HOSTS)) as ex:
        got = set().union(*ex.map(from_host, HOSTS))
    return inv, got


def test_independent_probe_agrees_with_the_seed():
    inv, got = probe_matrix()
    admitted = {}
    for h, d, p, port, peer in expected_flows(inv):
        if d == "in":
            admitted.setdefault((h, p, port), []).append(ipaddress.ip_network(peer))

    def seed_allows(dst, proto, port, src):
        a = ipaddress.ip_network(src).network_address
        return any(a in n for n in admitted.get((dst, proto, port), []) if n.version == a.version)

    wrong = sorted(
        f"{dst} {port}/{proto} from {src}: {'open' if allowed else 'blocked'}, seed says the opposite"
        for dst, proto, port, src, allowed in got
        if allowed != seed_allows(dst, proto, port, src)
    )
    assert not wrong, "\n".join(wrong[:40])
    assert sum(1 for *_probe, allowed in got if allowed) > 500


def test_second_run_changes_nothing():
    r = ok(playbook("site.yml"))
    rc = recap(r.stdout)
    assert set(rc) == set(HOSTS)
    assert all(v["changed"] == 0 for v in rc.values()), rc


def test_include_role_in_an_existing_playbook(tmp_path):
    pb = tmp_path / "vorstream.yml"
    pb.write_text(
        "- name: An existing VOR Stream play\n"
        "  hosts: all\n"
        "  become: true\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Something the play already did\n"
        "      ansible.builtin.command: 'true'\n"
        "      changed_when: false\n"
        "    - name: Host firewalls\n"
        "      ansible.builtin.include_role:\n"
        "        name: vorstream.firewall.host_firewall\n"
    )
    # One host of each backend is enough to show the role runs inside another play.
    r = ok(playbook(pb, "-l", "django1,vault1,sdk1"))
    rc = recap(r.stdout)
    assert set(rc) == {"django1", "vault1", "sdk1"}, rc
    assert all(v["changed"] == 0 and v["failed"] == 0 for v in rc.values()), rc


def test_operator_rules_survive():
    for layer in ("", "--permanent "):
        assert OPERATOR_RICH in on("django1", f"firewall-cmd {layer}--list-rich-rules")
        assert "7777/tcp" in on("django1", f"firewall-cmd {layer}--list-ports")
    assert RUNTIME_ONLY_RICH in on("pg1", "firewall-cmd --list-rich-rules")


def test_check_mode_reports_the_change_and_applies_nothing():
    before = snapshot()
    r = ok(playbook("site.yml", "--check", "--diff", "-e", "host_firewall_database=sqlserver"))
    rc = recap(r.stdout)
    assert rc["pg1"]["changed"] == 1, rc  # Postgres no longer admits Django and Vault
    assert rc["web1"]["changed"] == 0, rc
    assert re.search(r'^-zone public: rule family="ipv4" source ipset="vorfw-g-django-4" port port="5432"', r.stdout, re.M), r.stdout[-3000:]
    assert snapshot() == before


def test_bad_input_fails_before_any_host_is_touched():
    before = snapshot()
    for extra, words in [
        (["-e", "host_firewall_database=mysql"], ["host_firewall_database", "mysql"]),
        (["-e", '{"host_firewall_admin_sources": ["10.0.0.0/33"]}'], ["malformed CIDR '10.0.0.0/33'"]),
        (["-e", "host_firewall_backend=iptables"], ["host_firewall_backend", "iptables"]),
    ]:
        r = playbook("site.yml", *extra)
        assert r.returncode != 0
        for w in words:
            assert w in r.stdout, r.stdout[-3000:]
        assert "Enforce this host's plan" not in r.stdout
    assert snapshot() == before


def test_host_moved_out_of_a_group_loses_exactly_its_flows(tmp_path, vorfw):
    moved = tmp_path / "inventory.ini"
    text = INVENTORY.read_text()
    moved.write_text(re.sub(r"(\[compute\]\n)compute1\ncompute2\n", r"\1compute1\n", text))
    assert moved.read_text() != text

    def flows(inv):
        return set(run([vorfw, "plan", "-i", inv, "-i", DEMO], check=True).stdout.splitlines())

    def cut(lines):
        return {tuple(l.split("\t")[:5]) for l in lines}

    old, new = cut(flows(INVENTORY)), cut(flows(moved))
    assert new < old
    c2 = {"10.231.0.32/32", "fd00:231::32/128"}
    lost = old - new
    # Every lost flow has compute2 at one end, and compute2 keeps being a Consul client.
    assert all(f[0] == "compute2" or f[4] in c2 for f in lost)
    assert ("compute2", "in", "tcp", "8301", "10.231.0.11/32") in new
    assert ("compute2", "in", "tcp", "23234", "10.231.0.21/32") in lost
    assert ("rabbit1", "in", "tcp", "5672", "10.231.0.32/32") in lost
    ok(playbook("site.yml", inventories=(moved, DEMO)))
    assert on("rabbit1", "firewall-cmd --ipset=vorfw-g-compute-4 --get-entries").split() == ["10.231.0.31/32"]
    assert "23234" not in on("compute2", "firewall-cmd --list-rich-rules")
    ok(playbook("verify.yml", inventories=(moved, DEMO)))
    # and back
    ok(playbook("site.yml"))
    assert sorted(on("rabbit1", "firewall-cmd --ipset=vorfw-g-compute-4 --get-entries").split()) == ["10.231.0.31/32", "10.231.0.32/32"]


def test_reload_and_restart_keep_the_rules():
    for h in FIREWALLD:
        on(h, "firewall-cmd -q --reload")
    # A restart: kill two daemons, let the lab start them again (as systemd would).
    for h in ("super1", "pg1"):
        on(h, "kill $(cat /run/firewalld.pid)")
    time.sleep(1)
    lab("up")
    ok(playbook("verify.yml", "-e", "verify_probe_management=true"))
    r = ok(playbook("site.yml"))
    assert all(v["changed"] == 0 for v in recap(r.stdout).values()), recap(r.stdout)
    assert OPERATOR_RICH in on("django1", "firewall-cmd --list-rich-rules")


def test_lockout_guard_keeps_the_controller_in(tmp_path):
    # No management sources, SSH service removed: only the controller may still SSH in.
    strict = tmp_path / "strict.yml"
    strict.write_text("all:\n  vars:\n    host_firewall_remove_zone_services: [ssh]\n    host_firewall_vault_dynamic_secrets: [postgres, rabbitmq]\n")
    ok(playbook("site.yml", inventories=(INVENTORY, strict)))
    r = ok(playbook("site.yml", inventories=(INVENTORY, strict)))  # the controller still gets in
    assert all(v["changed"] == 0 for v in recap(r.stdout).values())
    assert "vorfw-ctl-4" in on("django1", "firewall-cmd --list-rich-rules")
    blocked = on("consul1", "python3 -c \"import socket; s=socket.socket(); s.settimeout(2)\n"
                            "try:\n s.connect(('10.231.0.22', 22)); print('open')\nexcept OSError: print('blocked')\"")
    assert blocked.strip() == "blocked"
    ok(playbook("site.yml"))  # back to the demo settings


def test_offline_edits_the_permanent_configuration():
    on("web1", "kill $(cat /run/firewalld.pid)")
    time.sleep(1)
    r = ok(playbook("site.yml", "-l", "web1", "-e", "host_firewall_user_sources=10.231.0.0/24", "-e", "host_firewall_backend=firewalld", "-v"))
    assert "firewalld is not running" in r.stdout + r.stderr
    entries = on("web1", "firewall-offline-cmd --ipset=vorfw-a-user-4 --get-entries").split()
    assert entries == ["10.231.0.0/24"]
    lab("up")  # starts firewalld again, which loads the permanent configuration
    assert on("web1", "firewall-cmd --ipset=vorfw-a-user-4 --get-entries").split() == ["10.231.0.0/24"]
    ok(playbook("site.yml", "-l", "web1"))  # back to the demo settings (only web1 was changed)
    assert sorted(on("web1", "firewall-cmd --ipset=vorfw-a-user-4 --get-entries").split()) == ["0.0.0.0/1", "128.0.0.0/1"]
