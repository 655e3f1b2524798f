"""`vorfw plan` against an independent reading of the seed, on inventories written here."""
from __future__ import annotations

import csv
import io
import json
import random
import textwrap

import pytest

from helpers import ROOT, run
from oracle import expected_flows


def write(tmp_path, files: dict):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def inventory_json(path) -> dict:
    r = run(["ansible-inventory", "-i", path, "--list"], check=True)
    return json.loads(r.stdout)


def flows(vorfw, *args):
    r = run([vorfw, "plan", *args, "--format", "flows"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == sorted(lines, key=lambda l: l.encode()), "flows are not sorted"
    five = [tuple(l.split("\t")[:5]) for l in lines]
    assert len(five) == len(set(five)), "flows are not unique"
    return {(h, d, p, int(port), peer) for h, d, p, port, peer in five}


def check_against_oracle(vorfw, inv_path, *extra):
    got = flows(vorfw, "-i", inv_path, *extra)
    want = expected_flows(inventory_json(inv_path))
    missing, surplus = want - got, got - want
    assert not missing and not surplus, f"missing {sorted(missing)[:10]}\nsurplus {sorted(surplus)[:10]}"
    return got


NESTED_INI = """
    # nested children, host ranges named by IP, SDK on the compute hosts, options in [all:vars]
    [consul]
    10.20.0.[1:3]

    [consul_ui]
    10.20.0.1

    [super]
    mid ansible_host=10.20.1.1

    [django]
    dj ansible_host=10.20.1.2

    [web]
    caddy ansible_host=10.20.1.3

    [workers]
    worker[01:03] ansible_host=10.20.2.1

    [compute:children]
    workers

    [sdk:children]
    compute

    [rabbitmq]
    mq ansible_host=10.20.3.1

    [vault]
    vlt ansible_host=10.20.3.2

    [postgres]
    db ansible_host=10.20.3.3

    [backend:children]
    rabbitmq
    vault
    postgres

    [all:vars]
    host_firewall_vault_dynamic_secrets='["postgres", "rabbitmq"]'
    host_firewall_admin_sources='["192.168.10.0/24"]'
    host_firewall_power_user_sources=192.168.20.0/24
    host_firewall_user_sources='["10.0.0.0/8", "fd00::/8"]'
    host_firewall_management_sources='["192.168.10.5"]'
"""


def test_nested_children_ranges_multigroup_allvars(vorfw, tmp_path):
    # worker01..03 share ansible_host; give each its own firewall address via host_vars.
    files = {"hosts.ini": NESTED_INI}
    for i in range(1, 4):
        files[f"host_vars/worker0{i}.yml"] = f"host_firewall_address: 10.20.2.{10 + i}\n"
    write(tmp_path, files)
    got = check_against_oracle(vorfw, tmp_path / "hosts.ini")
    # spot checks written by hand from the seed
    assert ("worker01", "in", "tcp", 9000, "10.20.1.1/32") in got  # SDK gRPC from Mid-Tier
    assert ("worker01", "in", "tcp", 9000, "10.20.2.12/32") in got  # SDK from another compute host
    assert ("worker01", "in", "tcp", 9000, "10.20.2.11/32") not in got  # never from itself
    assert ("db", "in", "tcp", 5432, "10.20.3.2/32") in got  # Vault -> Postgres, dynamic secrets on
    assert ("mq", "in", "tcp", 15672, "10.20.3.2/32") in got
    assert ("mid", "in", "tcp", 22, "192.168.20.0/24") in got  # power users SSH to super
    assert ("10.20.0.1", "in", "tcp", 8500, "192.168.10.0/24") in got  # Consul UI, admins
    assert ("10.20.0.2", "in", "tcp", 8500, "192.168.10.0/24") not in got
    assert not any(f[0] == "db" and f[3] == 1433 for f in got)


def test_sqlserver_ipv6_and_explicit_address(vorfw, tmp_path):
    write(
        tmp_path,
        {
            "inv.yml": """
                all:
                  vars:
                    host_firewall_database: sqlserver
                    host_firewall_vault_dynamic_secrets: [sqlserver]
                  children:
                    consul:
                      hosts:
                        c1: {ansible_host: "fd00:20::1"}
                        c2: {ansible_host: "fd00:20::2"}
                        c3: {ansible_host: 10.30.0.3, host_firewall_address: ["10.31.0.3", "fd00:20::3"]}
                    super:
                      hosts:
                        m1: {ansible_host: mgmt-name.invalid, host_firewall_address: "10.30.1.1"}
                    django: {hosts: {d1: {ansible_host: "fd00:20::12"}}}
                    web: {hosts: {w1: {ansible_host: 10.30.1.3}}}
                    vault: {hosts: {v1: {ansible_host: 10.30.3.2}}}
                    postgres: {hosts: {p1: {ansible_host: 10.30.3.3}}}
                    sqlserver: {hosts: {s1: {ansible_host: 10.30.3.4}}}
            """
        },
    )
    got = check_against_oracle(vorfw, tmp_path / "inv.yml")
    assert ("s1", "in", "tcp", 1433, "fd00:20::12/128") in got  # Django (IPv6) -> SQL Server
    assert ("s1", "in", "tcp", 1433, "10.30.3.2/32") in got  # Vault with dynamic secrets
    assert not any(f[0] == "p1" and f[3] == 5432 for f in got)  # Postgres not selected
    assert ("c1", "in", "udp", 8301, "10.31.0.3/32") in got  # firewall address, not ansible_host
    assert not any(f[4] == "10.30.0.3/32" for f in got)
    assert ("d1", "out", "tcp", 1962, "10.30.1.1/32") in got
    assert ("w1", "in", "tcp", 8081, "0.0.0.0/0") in got and ("w1", "in", "tcp", 8081, "::/0") in got


def test_single_tier_example_admits_only_the_audiences(vorfw):
    got = check_against_oracle(vorfw, ROOT / "examples" / "single-tier.ini")
    assert {f[1] for f in got} == {"in"}
    assert {f[3] for f in got} == {22, 8001, 8081, 8200, 8500, 15672}


def test_multi_tier_example(vorfw):
    check_against_oracle(vorfw, ROOT / "examples" / "multi-tier.yml")


GROUPS = ["compute", "consul", "consul_ui", "django", "super", "postgres", "rabbitmq", "sdk", "vault", "web", "sqlserver"]


@pytest.mark.parametrize("seed", range(12))
def test_random_inventories(vorfw, tmp_path, seed):
    rnd = random.Random(seed)
    n = rnd.randint(1, 14)
    hosts = {}
    for i in range(n):
        name = f"h{i}"
        if rnd.random() < 0.3:
            hosts[name] = {"ansible_host": f"fd00:{seed}::{i + 1}"}
        else:
            hosts[name] = {"ansible_host": f"10.{seed}.0.{i + 1}"}
        if rnd.random() < 0.15:
            hosts[name]["host_firewall_address"] = [f"10.{seed}.9.{i + 1}", f"fd00:{seed}:9::{i + 1}"]
    groups = {g: {"hosts": {}} for g in GROUPS}
    for name in hosts:
        for g in rnd.sample(GROUPS, rnd.randint(0, 4)):
            groups[g]["hosts"][name] = None
    # a parent group holding some groups as children
    groups["tier"] = {"children": {g: None for g in rnd.sample(GROUPS, 3)}}
    all_vars = {
        "host_firewall_database": rnd.choice(["postgres", "sqlserver"]),
        "host_firewall_vault_dynamic_secrets": rnd.sample(["postgres", "sqlserver", "rabbitmq"], rnd.randint(0, 3)),
        "host_firewall_admin_sources": rnd.sample(["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"], rnd.randint(0, 2)),
        "host_firewall_power_user_sources": rnd.sample(["203.0.113.0/24"], rnd.randint(0, 1)),
    }
    if rnd.random() < 0.5:
        all_vars["host_firewall_management_sources"] = ["192.0.2.250/32"]
    inv = {"all": {"vars": all_vars, "hosts": hosts, "children": groups}}
    p = tmp_path / "inv.yml"
    p.write_text(json.dumps(inv))  # JSON is valid YAML for the yaml inventory plugin
    check_against_oracle(vorfw, p)


def test_inventory_json_file_and_stdin_give_the_same_flows(vorfw, tmp_path):
    inv = ROOT / "examples" / "multi-tier.yml"
    via_ansible = run([vorfw, "plan", "-i", inv]).stdout
    js = run(["ansible-inventory", "-i", inv, "--list"], check=True).stdout
    (tmp_path / "inv.json").write_text(js)
    assert run([vorfw, "plan", "--inventory", tmp_path / "inv.json"]).stdout == via_ansible
    assert run([vorfw, "plan", "--inventory", "-"], input=js).stdout == via_ansible


def test_extra_vars_override_like_ansible_playbook(vorfw):
    inv = ROOT / "examples" / "multi-tier.yml"
    got = flows(vorfw, "-i", inv, "-e", "host_firewall_database=sqlserver")
    assert not any(f[3] == 5432 for f in got)
    got = flows(vorfw, "-i", inv, "-e", '{"host_firewall_management_sources": ["192.0.2.99/32"]}')
    assert ("web1", "in", "tcp", 22, "192.0.2.99/32") in got
    assert ("web1", "in", "tcp", 22, "198.51.100.10/32") not in got


def test_extra_and_disabled_rules(vorfw, tmp_path):
    write(
        tmp_path,
        {
            "inv.yml": """
                all:
                  vars:
                    host_firewall_disabled_rules: [ext-web-8081-users, web-8081-from-compute]
                    host_firewall_extra_rules:
                      - {id: consul-wan, service: Consul Server, port: 8302, protocols: [tcp, udp], purpose: Serf WAN, source: Consul Server}
                      - {id: django-tls, group: django, port: 8443, sources: ["10.0.0.0/8"], purpose: Django TLS}
                  children:
                    consul: {hosts: {c1: {ansible_host: 10.40.0.1}, c2: {ansible_host: 10.40.0.2}}}
                    django: {hosts: {d1: {ansible_host: 10.40.0.3}}}
                    web: {hosts: {w1: {ansible_host: 10.40.0.4}}}
                    compute: {hosts: {x1: {ansible_host: 10.40.0.5}}}
            """
        },
    )
    got = flows(vorfw, "-i", tmp_path / "inv.yml")
    assert ("c1", "in", "udp", 8302, "10.40.0.2/32") in got
    assert ("c2", "out", "tcp", 8302, "10.40.0.1/32") in got
    assert ("d1", "in", "tcp", 8443, "10.0.0.0/8") in got
    assert not any(f[0] == "w1" and f[3] == 8081 for f in got)
    assert not any(f[0] == "x1" and f[3] == 8081 for f in got)


def test_other_formats(vorfw):
    inv = ROOT / "examples" / "multi-tier.yml"
    lines = run([vorfw, "plan", "-i", inv]).stdout.splitlines()
    js = json.loads(run([vorfw, "plan", "-i", inv, "--format", "json"]).stdout)
    assert set(js["hosts"]) == {l.split("\t")[0] for l in lines}
    assert js["format"] == "vorstream.firewall/plan/v2"
    # Every rule names a set of its host's, and every set a host names is in the table once.
    for name, h in js["hosts"].items():
        assert h["format"] == "vorstream.firewall/request/v2"
        assert {r["set"] for r in h["inbound"] + h["outbound"] + h["egress_extra"]} == set(h["sets"]), name
        assert set(h["sets"].values()) <= set(js["sets"]), name
    pg1 = js["hosts"]["pg1"]
    [serf] = [r for r in pg1["inbound"] if r["port"] == 8301 and r["protocol"] == "udp" and r["set"] == "g-all"]
    assert js["sets"][pg1["sets"]["g-all"]]["members"] == "hosts"
    rows = list(csv.DictReader(io.StringIO(run([vorfw, "plan", "-i", inv, "--format", "csv"]).stdout)))
    assert [(r["host"], r["direction"], r["protocol"], r["port"], r["peer"]) for r in rows] == [
        tuple(l.split("\t")[:5]) for l in lines
    ]
    md = run([vorfw, "plan", "-i", inv, "--format", "markdown"]).stdout
    assert "## pg1" in md and "| 5432 | tcp | Django (group super)" not in md
    assert "| 5432 | tcp | Django (group django) | django1 (192.0.2.22/32)" in md
    mm = run([vorfw, "plan", "-i", inv, "--format", "mermaid"]).stdout
    assert mm.startswith("flowchart LR")
    assert 'subgraph Mid_2dTier["Mid-Tier"]' in mm and "Mid_2dTier -->|8001| Django" in mm


# ---- bad input: non-zero exit, one clear message, no partial output ----

BAD = [
    ({"host_firewall_database": "mysql"}, "host web1: host_firewall_database: invalid value 'mysql' (expected one of: postgres, sqlserver)"),
    ({"host_firewall_vault_dynamic_secrets": ["mongodb"]}, "host_firewall_vault_dynamic_secrets: invalid value 'mongodb'"),
    ({"host_firewall_admin_sources": ["10.0.0.0/33"]}, "host web1: host_firewall_admin_sources: malformed CIDR '10.0.0.0/33'"),
    ({"host_firewall_management_sources": "not-a-cidr"}, "host_firewall_management_sources: malformed CIDR 'not-a-cidr'"),
    ({"host_firewall_extra_rules": [{"id": "x", "group": "web", "port": 70000, "source_group": "web"}]},
     "host web1: host_firewall_extra_rules[0] (id x): port 70000 is out of range 1-65535"),
    ({"host_firewall_extra_rules": [{"id": "x", "service": "Nginx", "port": 80, "source_group": "web"}]}, "service/group names unknown service 'Nginx'"),
    ({"host_firewall_extra_rules": [{"id": "x", "group": "web", "port": 80, "source_group": "proxies"}]},
     "source names group 'proxies', which is not in the inventory"),
    ({"host_firewall_extra_rules": [{"id": "x", "group": "nosuch", "port": 80, "sources": ["10.0.0.0/8"]}]},
     "service/group names group 'nosuch', which is not in the inventory"),
    ({"host_firewall_disabled_rules": ["no-such-row"]}, "host web1: host_firewall_disabled_rules: unknown rule id 'no-such-row'"),
    ({"host_firewall_admin_source": ["10.0.0.0/8"]}, "host web1: unknown variable host_firewall_admin_source (did you mean host_firewall_admin_sources?)"),
    ({"host_firewall_backend": "iptables"}, "host_firewall_backend: invalid value 'iptables'"),
]


@pytest.mark.parametrize("hostvars,message", BAD, ids=[m[:40] for _vars, m in BAD])
def test_bad_input_names_the_fault(vorfw, tmp_path, hostvars, message):
    inv = {"all": {"children": {"web": {"hosts": {"web1": dict(ansible_host="10.50.0.1", **hostvars)}}}}}
    (tmp_path / "inv.yml").write_text(json.dumps(inv))
    r = run([vorfw, "plan", "-i", tmp_path / "inv.yml"])
    assert r.returncode != 0
    assert r.stdout == ""
    assert message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_one_extra_rule_id_means_one_rule_fleet_wide(vorfw, tmp_path):
    def rule(port):
        return [{"id": "app", "group": "web", "port": port, "source_group": "django", "purpose": "App"}]

    inv = {"all": {"children": {
        "web": {"hosts": {"web1": {"ansible_host": "10.50.0.1", "host_firewall_extra_rules": rule(9001)},
                          "web2": {"ansible_host": "10.50.0.2", "host_firewall_extra_rules": rule(9002)}}},
        "django": {"hosts": {"dj1": {"ansible_host": "10.50.0.3"}}}}}}
    (tmp_path / "inv.yml").write_text(json.dumps(inv))
    r = run([vorfw, "plan", "-i", tmp_path / "inv.yml"])
    assert r.returncode != 0 and r.stdout == ""
    assert "host web2: host_firewall_extra_rules: id 'app' is defined differently on host web1" in r.stderr, r.stderr


def test_look_alike_group_names_stay_apart(vorfw, tmp_path):
    # dc1.web hashes to the name a group called dc1_web_61076b would have had.
    inv = {"all": {"children": {
        "dc1.web": {"hosts": {"a1": {"ansible_host": "10.50.0.4"}}},
        "dc1_web_61076b": {"hosts": {"b1": {"ansible_host": "10.50.0.5"}}},
        "web": {"hosts": {"w1": {"ansible_host": "10.50.0.6", "host_firewall_extra_rules": [
            {"id": "a", "group": "web", "port": 9001, "source_group": "dc1.web", "purpose": "A"},
            {"id": "b", "group": "web", "port": 9002, "source_group": "dc1_web_61076b", "purpose": "B"}]}}}}}}
    (tmp_path / "inv.yml").write_text(json.dumps(inv))
    r = run([vorfw, "plan", "-i", tmp_path / "inv.yml", "--limit", "w1"])
    assert r.returncode == 0, r.stderr
    assert "w1\tin\ttcp\t9001\t10.50.0.4/32\tA\ta" in r.stdout and "w1\tin\ttcp\t9002\t10.50.0.5/32\tB\tb" in r.stdout


def test_host_without_an_address(vorfw, tmp_path):
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=no-such-host.invalid\n")
    r = run([vorfw, "plan", "-i", tmp_path / "hosts.ini"])
    assert r.returncode != 0 and r.stdout == ""
    assert "host web1: no address: ansible_host 'no-such-host.invalid' does not resolve" in r.stderr
    assert "set host_firewall_address" in r.stderr


def test_unknown_format_and_missing_inventory(vorfw, tmp_path):
    r = run([vorfw, "plan", "-i", ROOT / "examples" / "multi-tier.yml", "--format", "pdf"])
    assert r.returncode != 0 and r.stdout == "" and "'pdf'" in r.stderr
    r = run([vorfw, "plan", "-i", tmp_path / "nope.ini"])
    assert r.returncode != 0 and r.stdout == ""
    assert f"inventory {tmp_path / 'nope.ini'}: no such file or directory" in r.stderr
    (tmp_path / "broken.ini").write_text("[web\nweb1\n")
    r = run([vorfw, "plan", "-i", tmp_path / "broken.ini"])
    assert r.returncode != 0 and r.stdout == ""
