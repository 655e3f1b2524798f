"""The cloud_security_groups role against a local EC2 emulator (moto's server on 127.0.0.1),
through the real amazon.aws modules: create, re-run without change, an owned stale rule purged,
a foreign rule and a foreign group left alone, check mode changing nothing, a service moved;
every time read back with boto3 and compared with the plan."""
from __future__ import annotations

import json
import os
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


def playbook(tmp_path, moto, vpc, prefix_lists=None, region=REGION, **extra):
    vars_ = {
        "cloud_security_groups_provider": "aws",
        "cloud_security_groups_aws_vpc_id": vpc,
        "cloud_security_groups_aws_region": region,
        "cloud_security_groups_aws_endpoint_url": moto,
        "cloud_security_groups_aws_prefix_list_ids": prefix_lists or {},
        **extra,
    }
    pb = tmp_path / "cloud.yml"
    pb.write_text(yaml.safe_dump([{"name": "Cloud security groups", "hosts": "localhost", "connection": "local",
                                   "gather_facts": False, "vars": vars_,
                                   "roles": ["vorstream.firewall.cloud_security_groups"]}]))
    return pb


def play(pb, inventory, moto, cloud_collections, *args, ok=True):
    env = {**CREDS, "AWS_ENDPOINT_URL": moto, "AWS_ENDPOINT_URL_EC2": moto, "NO_PROXY": "127.0.0.1",
           "HTTPS_PROXY": "", "HTTP_PROXY": "",
           "ANSIBLE_COLLECTIONS_PATH": f"{ROOT / 'build' / 'collections'}:{cloud_collections}"}
    r = run(["ansible-playbook", "-i", inventory, pb, *args], extra_env=env, timeout=600)
    if not ok:
        assert r.returncode != 0, r.stdout[-3000:]
        return None, r.stdout
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

    # The operator's lists are used, never changed.
    for name, pl_id in ids.items():
        assert [e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=pl_id)["Entries"]] == [
            {"vorfw-entra-ipv4": "20.190.128.0/18", "vorfw-entra-ipv6": "2603:1006:2000::/48"}[name]]

    # With the id of one list only, the role fails before touching anything, naming the variable.
    snapshot = groups(ec2, vpc)
    pb = playbook(tmp_path, moto, vpc, prefix_lists={"vorfw-entra-ipv4": ids["vorfw-entra-ipv4"]},
                  cloud_security_groups_egress="restricted")
    _changed, out = play(pb, inv, moto, cloud_collections, ok=False)
    assert "cloud_security_groups_aws_prefix_list_ids" in out and "vorfw-entra-ipv6" in out, out[-3000:]
    assert groups(ec2, vpc) == snapshot


MICROSOFT = ROOT / "tests" / "fixtures" / "servicetags" / "microsoft"


def entra_tag(path, tag="AzureActiveDirectory"):
    """A real Microsoft file's prefixes of one service tag, IPv4 and IPv6 apart."""
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    [v] = [v for v in doc["values"] if v["name"] == tag]
    prefixes = set(v["properties"]["addressPrefixes"])
    return {p for p in prefixes if ":" not in p}, {p for p in prefixes if ":" in p}


def prefix_lists(ec2):
    """Customer-managed prefix lists by name: (id, tags, max_entries, entries)."""
    out = {}
    for pl in ec2.describe_managed_prefix_lists()["PrefixLists"]:
        if pl.get("OwnerId") == "AWS" or pl["State"].startswith("delete-"):
            continue
        entries = {e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=pl["PrefixListId"])["Entries"]}
        out[pl["PrefixListName"]] = (pl["PrefixListId"], {t["Key"]: t["Value"] for t in pl.get("Tags", [])},
                                     pl["MaxEntries"], entries)
    return out


def test_the_role_keeps_the_entra_prefix_lists_from_the_feed(tmp_path, moto, vorfw, cloud_collections):
    """No ids given: the role creates the two prefix lists, keeps their entries equal to the Entra ID
    list the controller validated from Microsoft's real files week by week (removals kept for the
    grace period), references them from the OIDC clients' groups, and deletes them when egress opens."""
    region = "eu-west-1"
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=moto, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    inv = ROOT / "examples" / "multi-tier.yml"
    state = tmp_path / "entra-state"
    entra_bin = ROOT / "roles" / "entra_egress" / "files" / f"vorfw-entra_{os.uname().machine}"
    week1, week2 = MICROSOFT / "ServiceTags_Public_20250714.json", MICROSOFT / "ServiceTags_Public_20250721.json"

    def pb(week, **extra):
        extra = {"cloud_security_groups_egress": "restricted", **extra}
        return playbook(tmp_path, moto, vpc, region=region, cloud_security_groups_entra_args=["--file", str(week)],
                        cloud_security_groups_entra_state_dir=str(state), **extra)

    def controller_list():
        doc = json.loads(run([entra_bin, "--state-dir", state, "show", "--format", "json"], check=True).stdout)
        return set(doc["ipv4"]), set(doc["ipv6"])

    def assert_lists_and_groups(v4, v6):
        lists = prefix_lists(ec2)
        assert set(lists) == {"vorfw-entra-ipv4", "vorfw-entra-ipv6"}
        for name, want in (("vorfw-entra-ipv4", v4), ("vorfw-entra-ipv6", v6)):
            _id, tags, max_entries, entries = lists[name]
            assert tags == {"managed-by": "vorstream.firewall"} and max_entries == 300
            assert entries == want, (name, entries ^ want)
        doc = json.loads(run([vorfw, "plan", "-i", inv, "--format", "aws-sg", "--egress", "restricted"],
                             check=True).stdout)
        for g in doc["security_groups"]:
            for r in g["rules_egress"]:
                if "ip_prefix" in r:
                    r["ip_prefix"] = lists[r["ip_prefix"]][0]
        assert_matches_plan(ec2, vpc, doc)
        assert {r[4] for r in prefix_list_refs(doc)} == {lists[n][0] for n in lists}

    # 1. Week 1: created, with exactly the file's AzureActiveDirectory prefixes.
    changed, _out = play(pb(week1), inv, moto, cloud_collections)
    assert changed > 0
    v4, v6 = entra_tag(week1)
    assert (len(v4), len(v6)) == (199, 15)
    assert controller_list() == (v4, v6)
    assert_lists_and_groups(v4, v6)
    ids = {n: pl[0] for n, pl in prefix_lists(ec2).items()}

    # 2. The same file again: nothing changes.
    changed, out = play(pb(week1), inv, moto, cloud_collections)
    assert changed == 0, out[-4000:]

    # 3. Week 2 in check mode: reported, nothing changed, in the cloud or on the controller.
    before = prefix_lists(ec2)
    changed, out = play(pb(week2), inv, moto, cloud_collections, "--check", "--diff")
    assert changed == 1, out[-4000:]
    assert "13.87.32.18/32" in out  # the diff shows an added prefix
    assert prefix_lists(ec2) == before and controller_list() == (v4, v6)

    # 4. Week 2: its additions at once, its removals kept for the grace period, the same lists.
    changed, _out = play(pb(week2), inv, moto, cloud_collections)
    assert changed == 1
    w4, w6 = entra_tag(week2)
    assert v4 - w4 and w4 - v4, "the two real files differ"
    assert controller_list() == (w4 | v4, w6 | v6)
    assert_lists_and_groups(w4 | v4, w6 | v6)
    assert {n: pl[0] for n, pl in prefix_lists(ec2).items()} == ids
    changed, out = play(pb(week2), inv, moto, cloud_collections)
    assert changed == 0, out[-4000:]

    # 5. Lists too small for the feed: the role fails before changing anything, naming the variable.
    before, snapshot = prefix_lists(ec2), groups(ec2, vpc)
    _changed, out = play(pb(week2, cloud_security_groups_aws_prefix_list_entries=150), inv, moto, cloud_collections,
                         ok=False)
    assert "cloud_security_groups_aws_prefix_list_entries" in out and "vorfw-entra-ipv4" in out, out[-3000:]
    assert prefix_lists(ec2) == before and groups(ec2, vpc) == snapshot

    # 6. Egress open: the groups lose their references, then the lists are deleted.
    changed, _out = play(pb(week2, cloud_security_groups_egress="open"), inv, moto, cloud_collections)
    assert changed > 0
    assert prefix_lists(ec2) == {}
    assert_matches_plan(ec2, vpc, plan(vorfw, inv))


def test_a_prefix_list_of_someone_elses_under_our_name_is_refused(tmp_path, moto, cloud_collections):
    region = "ap-south-1"
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=moto, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    theirs = ec2.create_managed_prefix_list(PrefixListName="vorfw-entra-ipv4", AddressFamily="IPv4", MaxEntries=5,
                                            Entries=[{"Cidr": "192.0.2.0/24"}])["PrefixList"]["PrefixListId"]
    pb = playbook(tmp_path, moto, vpc, region=region, cloud_security_groups_egress="restricted",
                  cloud_security_groups_entra_args=["--file", str(MICROSOFT / "ServiceTags_Public_20250714.json")],
                  cloud_security_groups_entra_state_dir=str(tmp_path / "entra-state"))
    _changed, out = play(pb, ROOT / "examples" / "multi-tier.yml", moto, cloud_collections, ok=False)
    assert "vorfw-entra-ipv4" in out and theirs in out and "not ours" in out, out[-3000:]
    # Nothing was created or changed: no list of ours, no group, their list as it was.
    assert set(prefix_lists(ec2)) == {"vorfw-entra-ipv4"}
    assert prefix_lists(ec2)["vorfw-entra-ipv4"][3] == {"192.0.2.0/24"}
    assert not any(g["GroupName"].startswith("vorfw-") for g in groups(ec2, vpc).values())
