"""`vorfw plan --format azure-nsg|aws-sg`: the plan as cloud security policy, against golden
files (tests/golden/cloud), with the providers' limits checked and rule counts flat as the
fleet grows. Regenerate with `VORFW_UPDATE_GOLDEN=1 make test-cli` and read the diff."""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

from helpers import ROOT, run

sys.path.insert(0, str(ROOT / "bench"))
from plan import inventory  # noqa: E402  (the benchmark's generated fleet)

GOLDEN = ROOT / "tests" / "golden" / "cloud"
CASES = {
    "open": [],
    "restricted": ["--egress", "restricted"],
    "service": ["--egress", "restricted", "--nsg-mode", "service", "--external", "perimeter"],
}
INVENTORIES = ["multi-tier.yml", "single-tier.ini"]
FORMATS = ["azure-nsg", "aws-sg"]


def plan(vorfw, inv, fmt, *args):
    r = run([vorfw, "plan", "-i", inv, "--format", fmt, *args])
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("inv,fmt,case", [(i, f, c) for i in INVENTORIES for f in FORMATS for c in CASES])
def test_cloud_renderings_match_the_golden_files(vorfw, inv, fmt, case):
    out = plan(vorfw, ROOT / "examples" / inv, fmt, *CASES[case])
    golden = GOLDEN / inv / f"{fmt}.{case}.json"
    if os.environ.get("VORFW_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(out)
    assert golden.is_file(), f"{golden} is missing: run with VORFW_UPDATE_GOLDEN=1 and review it"
    assert out == golden.read_text(), f"{inv} {fmt} {case}: rendering differs from {golden}"


def nsg_rules(arm):
    return {r["name"]: r["properties"]["securityRules"] for r in arm["resources"]
            if r["type"] == "Microsoft.Network/networkSecurityGroups"}


def test_azure_rules_are_group_to_group_with_unique_stable_priorities(vorfw):
    arm = json.loads(plan(vorfw, ROOT / "examples" / "multi-tier.yml", "azure-nsg", "--egress", "restricted"))
    asgs = {r["name"] for r in arm["resources"] if r["type"].endswith("applicationSecurityGroups")}
    assert {"vorfw-super", "vorfw-compute", "vorfw-all", "vorfw-consul"} <= asgs
    [(nsg, rules)] = nsg_rules(arm).items()
    assert nsg == "vorfw-vorstream"
    for d in ("Inbound", "Outbound"):
        prios = [r["properties"]["priority"] for r in rules if r["properties"]["direction"] == d]
        assert len(prios) == len(set(prios)) and all(100 <= p <= 4096 for p in prios), d
    by_name = {r["name"]: r["properties"] for r in rules}
    ssh = by_name["vorfw-compute-23234-from-mid-tier-tcp-in"]
    assert ssh["sourceApplicationSecurityGroups"][0]["id"].endswith("'vorfw-super')]")
    assert ssh["destinationApplicationSecurityGroups"][0]["id"].endswith("'vorfw-compute')]")
    assert ssh["destinationPortRange"] == "23234" and ssh["protocol"] == "Tcp"
    entra = by_name["vorfw-entra-oidc-tcp-out-super"]
    assert entra["destinationAddressPrefix"] == "AzureActiveDirectory" and entra["destinationPortRange"] == "443"
    users = by_name["vorfw-ext-web-8081-users-tcp-in"]
    assert users["sourceAddressPrefix"] == "10.0.0.0/8"
    assert by_name["vorfw-deny-all-in"]["priority"] == 4096 and by_name["vorfw-deny-all-in"]["access"] == "Deny"


def test_adding_a_rule_renumbers_no_other(vorfw, tmp_path):
    base = ROOT / "examples" / "multi-tier.yml"
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"host_firewall_extra_rules": [
        {"id": "rabbitmq-epmd", "group": "rabbitmq", "port": 4369, "source_group": "compute",
         "purpose": "RabbitMQ peer discovery"}]}))
    before = nsg_rules(json.loads(plan(vorfw, base, "azure-nsg")))["vorfw-vorstream"]
    after = nsg_rules(json.loads(plan(vorfw, base, "azure-nsg", "-e", f"@{extra}")))["vorfw-vorstream"]
    old = {r["name"]: r["properties"]["priority"] for r in before}
    new = {r["name"]: r["properties"]["priority"] for r in after}
    assert set(new) - set(old) == {"vorfw-rabbitmq-epmd-tcp-in"}
    assert {n: new[n] for n in old} == old


def counts(doc, fmt):
    if fmt == "aws-sg":
        return {g["name"]: (len(g["rules"]), len(g["rules_egress"])) for g in doc["security_groups"]}
    return {n: len(r) for n, r in nsg_rules(doc).items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_rule_counts_stay_flat_from_100_to_1000_hosts(vorfw, tmp_path, fmt):
    got = []
    for n in (100, 1000):
        ini = tmp_path / f"inv{n}.ini"
        ini.write_text(inventory(n))
        doc = json.loads(plan(vorfw, ini, fmt, "--egress", "restricted"))
        got.append(counts(doc, fmt))
    assert got[0] == got[1] and got[0], got
    total = sum(sum(v) if isinstance(v, tuple) else v for v in got[1].values())
    assert total < 200, got[1]


def test_limits_fail_with_a_clear_message(vorfw, tmp_path):
    inv = ROOT / "examples" / "multi-tier.yml"
    r = run([vorfw, "plan", "-i", inv, "--format", "aws-sg", "--egress", "restricted", "--aws-rules-quota", "60"])
    assert r.returncode == 1 and r.stdout == ""
    assert re.search(r"security group vorfw-\S+ would hold \d+ outbound rules", r.stderr), r.stderr
    assert "quota of 60" in r.stderr, r.stderr
    long = tmp_path / "long.json"
    long.write_text(json.dumps({"host_firewall_extra_rules": [
        {"id": "x" * 80, "group": "web", "port": 9001, "source_group": "django", "purpose": "P"}]}))
    r = run([vorfw, "plan", "-i", inv, "--format", "azure-nsg", "-e", f"@{long}"])
    assert r.returncode == 1 and "is not a valid Azure name" in r.stderr, r.stderr
    r = run([vorfw, "plan", "-i", inv, "--format", "azure-nsg", "--subnet", "app=super,django"])
    assert r.returncode == 1 and "are in no --subnet" in r.stderr, r.stderr


def test_the_service_tag_must_exist_in_the_service_tag_file(vorfw, tmp_path):
    inv = ROOT / "examples" / "multi-tier.yml"
    tags = ROOT / "tests" / "fixtures" / "servicetags" / "ServiceTags_Public_lab_week1.json"
    assert tags.is_file()
    r = run([vorfw, "plan", "-i", inv, "--format", "azure-nsg", "--egress", "restricted", "--service-tags", tags])
    assert r.returncode == 0, r.stderr
    other = tmp_path / "tags.json"
    other.write_text(json.dumps({"changeNumber": 1, "cloud": "Public", "values": [{"name": "Storage"}]}))
    r = run([vorfw, "plan", "-i", inv, "--format", "azure-nsg", "--egress", "restricted", "--service-tags", other])
    assert r.returncode == 1 and "the service tag AzureActiveDirectory is not in this file" in r.stderr, r.stderr


def test_aws_rules_have_exactly_one_source_kind(vorfw):
    doc = json.loads(plan(vorfw, ROOT / "examples" / "multi-tier.yml", "aws-sg", "--egress", "restricted"))
    kinds = {"cidr_ip", "cidr_ipv6", "ip_prefix", "group_id", "group_name"}
    n = 0
    for g in doc["security_groups"]:
        assert g["name"].startswith("vorfw-") and g["tags"]["managed-by"] == "vorstream.firewall"
        for r in g["rules"] + g["rules_egress"]:
            assert len(kinds & set(r)) == 1, r
            assert r["rule_desc"].startswith("vorfw "), r
            n += 1
    assert n > 40
    names = {p["name"] for p in doc["prefix_lists"]}
    assert names == {"vorfw-entra-ipv4", "vorfw-entra-ipv6"}
    sup = next(g for g in doc["security_groups"] if g["name"] == "vorfw-super")
    assert {r.get("ip_prefix") for r in sup["rules_egress"]} >= names
