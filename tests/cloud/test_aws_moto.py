"""The cloud_security_groups role against a local EC2 emulator (moto's server on 127.0.0.1),
through the real amazon.aws modules: create, re-run without change, an owned stale rule purged,
a foreign rule and a foreign group left alone, check mode changing nothing, a service moved;
every time read back with boto3 and compared with the plan."""
from __future__ import annotations

import json
import re

import boto3
import pytest
import yaml

from helpers import ROOT, run

REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
         "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def ec2(moto):
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def vpc(ec2):
    return ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]


def playbook(tmp_path, moto, vpc, prefix_lists=None, **extra):
    vars_ = {
        "cloud_security_groups_provider": "aws",
        "cloud_security_groups_aws_vpc_id": vpc,
        "cloud_security_groups_aws_region": REGION,
        "cloud_security_groups_aws_endpoint_url": moto,
        "cloud_security_groups_aws_prefix_list_ids": prefix_lists or {},
        **extra,
    }
    pb = tmp_path / "cloud.yml"
    pb.write_text(yaml.safe_dump([{"name": "Cloud security groups", "hosts": "localhost", "connection": "local",
                                   "gather_facts": False, "vars": vars_,
                                   "roles": ["vorstream.firewall.cloud_security_groups"]}]))
    return pb


def play(pb, inventory, moto, cloud_collections, *args):
    env = {**CREDS, "AWS_ENDPOINT_URL": moto, "AWS_ENDPOINT_URL_EC2": moto, "NO_PROXY": "127.0.0.1",
           "HTTPS_PROXY": "", "HTTP_PROXY": "",
           "ANSIBLE_COLLECTIONS_PATH": f"{ROOT / 'build' / 'collections'}:{cloud_collections}"}
    r = run(["ansible-playbook", "-i", inventory, pb, *args], extra_env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    m = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", r.stdout)
    assert m, r.stdout[-3000:]
    return int(m.group(1)), r.stdout


def plan(vorfw, inventory):
    r = run([vorfw, "plan", "-i", inventory, "--format", "aws-sg"], check=True)
    return json.loads(r.stdout)


def groups(ec2, vpc):
    sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    return {g["GroupName"]: g for g in sgs}


def live_rules(g, by_id, permissions="IpPermissions"):
    """A group's rules as (proto, from, to, source kind, source, description), one per source."""
    out = set()
    for p in g[permissions]:
        proto, lo, hi = p["IpProtocol"], p.get("FromPort"), p.get("ToPort")
        if proto == "-1":
            proto, lo, hi = "all", None, None
        for r in p.get("IpRanges", []):
            out.add((proto, lo, hi, "cidr_ip", r["CidrIp"], r.get("Description", "")))
        for r in p.get("Ipv6Ranges", []):
            out.add((proto, lo, hi, "cidr_ipv6", r["CidrIpv6"], r.get("Description", "")))
        for r in p.get("PrefixListIds", []):
            out.add((proto, lo, hi, "ip_prefix", r["PrefixListId"], r.get("Description", "")))
        for r in p.get("UserIdGroupPairs", []):
            out.add((proto, lo, hi, "group_name", by_id[r["GroupId"]], r.get("Description", "")))
    return out


def planned_rules(g, key):
    out = set()
    for r in g[key]:
        [kind] = [k for k in ("cidr_ip", "cidr_ipv6", "ip_prefix", "group_name") if k in r]
        out.add((r["proto"], r.get("from_port"), r.get("to_port"), kind, r[kind], r["rule_desc"]))
    return out


def assert_matches_plan(ec2, vpc, doc, foreign_rules=()):
    live = groups(ec2, vpc)
    by_id = {g["GroupId"]: name for name, g in live.items()}
    ours = {n for n, g in live.items() if {"Key": "managed-by", "Value": "vorstream.firewall"} in g.get("Tags", [])}
    assert ours == {g["name"] for g in doc["security_groups"]}
    for g in doc["security_groups"]:
        got = live_rules(live[g["name"]], by_id)
        want = planned_rules(g, "rules") | {f[1] for f in foreign_rules if f[0] == g["name"]}
        assert got == want, (g["name"], got ^ want)
        got = live_rules(live[g["name"]], by_id, "IpPermissionsEgress")
        want = planned_rules(g, "rules_egress")
        assert got == want, (g["name"], got ^ want)
    return live


def prefix_list_refs(doc):
    """The plan's egress rules that reference a prefix list, as (group, proto, from, to, id, description)."""
    return {(g["name"], r["proto"], r.get("from_port"), r.get("to_port"), r["ip_prefix"], r["rule_desc"])
            for g in doc["security_groups"] for r in g["rules_egress"] if "ip_prefix" in r}


def live_prefix_list_refs(ec2, vpc):
    """The same, read back from the emulator with boto3 (a missing description is "")."""
    out = set()
    for name, g in groups(ec2, vpc).items():
        for p in g["IpPermissionsEgress"]:
            proto, lo, hi = p["IpProtocol"], p.get("FromPort"), p.get("ToPort")
            if proto == "-1":
                proto, lo, hi = "all", None, None
            for ref in p.get("PrefixListIds", []):
                out.add((name, proto, lo, hi, ref["PrefixListId"], ref.get("Description", "")))
    return out


def test_the_role_converges_security_groups_in_the_emulator(tmp_path, moto, ec2, vpc, vorfw, cloud_collections):
    inv = ROOT / "examples" / "multi-tier.yml"
    doc = plan(vorfw, inv)
    assert len(doc["security_groups"]) == 11
    pb = playbook(tmp_path, moto, vpc)

    # A group and a rule of someone else's, there before the role runs.
    bastion = ec2.create_security_group(GroupName="operator-bastion", Description="the operator's", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=bastion, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "192.0.2.99/32", "Description": "ops"}]}])
    before_bastion = groups(ec2, vpc)["operator-bastion"]

    # 1. Create.
    changed, _out = play(pb, inv, moto, cloud_collections)
    assert changed > 0
    live = assert_matches_plan(ec2, vpc, doc)
    # Internal rows are group-to-group: Compute admits 23234 from the Mid-Tier's group.
    assert ("tcp", 23234, 23234, "group_name", "vorfw-super",
            "vorfw compute-23234-from-mid-tier: SSH - run execution") in live_rules(
        live["vorfw-compute"], {g["GroupId"]: n for n, g in live.items()})

    # 2. A foreign rule inside one of our groups; then a re-run changes nothing and keeps it.
    web = live["vorfw-web"]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 9100, "ToPort": 9100,
        "IpRanges": [{"CidrIp": "192.0.2.50/32", "Description": "operator monitoring"}]}])
    foreign = [("vorfw-web", ("tcp", 9100, 9100, "cidr_ip", "192.0.2.50/32", "operator monitoring"))]
    changed, out = play(pb, inv, moto, cloud_collections)
    assert changed == 0, out[-4000:]
    assert_matches_plan(ec2, vpc, doc, foreign)

    # 3. A stale rule of ours (its description says so) is purged; the foreign one stays.
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 7777, "ToPort": 7777,
        "IpRanges": [{"CidrIp": "192.0.2.77/32", "Description": "vorfw old-row: a row the plan no longer has"}]}])
    changed, _out = play(pb, inv, moto, cloud_collections)
    assert changed == 1
    assert_matches_plan(ec2, vpc, doc, foreign)

    # 4. A service moved: the SDK host now runs in the compute group, the sdk group is empty.
    moved = tmp_path / "moved.yml"
    data = yaml.safe_load(inv.read_text())
    data["all"]["children"]["compute"]["hosts"]["sdk1"] = data["all"]["children"]["sdk"]["hosts"].pop("sdk1")
    data["all"]["children"]["sdk"]["hosts"] = {}
    moved.write_text(yaml.safe_dump(data))
    doc2 = plan(vorfw, moved)
    assert "vorfw-sdk" not in {g["name"] for g in doc2["security_groups"]}
    # Check mode first: it reports changes and changes nothing.
    snapshot = groups(ec2, vpc)
    changed, _out = play(pb, moved, moto, cloud_collections, "--check", "--diff")
    assert changed > 0
    assert groups(ec2, vpc) == snapshot
    changed, _out = play(pb, moved, moto, cloud_collections)
    assert changed > 0
    live = assert_matches_plan(ec2, vpc, doc2, foreign)
    assert "vorfw-sdk" not in live
    changed, _out = play(pb, moved, moto, cloud_collections)
    assert changed == 0

    # The operator's group is as it was.
    assert groups(ec2, vpc)["operator-bastion"] == before_bastion


def test_restricted_egress_uses_the_entra_prefix_lists(tmp_path, moto, ec2, vorfw, cloud_collections):
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    inv = ROOT / "examples" / "multi-tier.yml"
    ids = {}
    for name, family, cidr in (("vorfw-entra-ipv4", "IPv4", "20.190.128.0/18"),
                               ("vorfw-entra-ipv6", "IPv6", "2603:1006:2000::/48")):
        ids[name] = ec2.create_managed_prefix_list(PrefixListName=name, AddressFamily=family, MaxEntries=100,
                                                   Entries=[{"Cidr": cidr}])["PrefixList"]["PrefixListId"]
    pb = playbook(tmp_path, moto, vpc, prefix_lists=ids, cloud_security_groups_egress="restricted")
    changed, _out = play(pb, inv, moto, cloud_collections)
    assert changed > 0
    doc = json.loads(run([vorfw, "plan", "-i", inv, "--format", "aws-sg", "--egress", "restricted"], check=True).stdout)
    for g in doc["security_groups"]:
        for r in g["rules_egress"]:
            if "ip_prefix" in r:
                r["ip_prefix"] = ids[r["ip_prefix"]]
    assert_matches_plan(ec2, vpc, doc)
    sup = groups(ec2, vpc)["vorfw-super"]
    pls = {p["PrefixListId"] for e in sup["IpPermissionsEgress"] for p in e.get("PrefixListIds", [])}
    assert pls == set(ids.values())
    # The prefix-list references, read back with their descriptions, are the plan's (and there are some).
    planned_refs = prefix_list_refs(doc)
    assert {r[4] for r in planned_refs} == set(ids.values()), planned_refs
    assert all(r[5].startswith("vorfw ") for r in planned_refs), planned_refs
    assert live_prefix_list_refs(ec2, vpc) == planned_refs

    # A re-run changes nothing (tests/cloud/moto_server.py makes moto keep a prefix-list
    # reference's description, as EC2 does), and the groups are still the plan.
    changed, out = play(pb, inv, moto, cloud_collections)
    assert changed == 0, out[-4000:]
    assert_matches_plan(ec2, vpc, doc)
    assert live_prefix_list_refs(ec2, vpc) == planned_refs

    # Without the prefix list ids the role fails before touching anything, naming the variable.
    pb = playbook(tmp_path, moto, vpc, cloud_security_groups_egress="restricted")
    env = {**CREDS, "AWS_ENDPOINT_URL": moto, "ANSIBLE_COLLECTIONS_PATH": f"{ROOT / 'build' / 'collections'}:{cloud_collections}"}
    r = run(["ansible-playbook", "-i", inv, pb], extra_env=env, timeout=600)
    assert r.returncode != 0 and "cloud_security_groups_aws_prefix_list_ids" in r.stdout, r.stdout[-3000:]
