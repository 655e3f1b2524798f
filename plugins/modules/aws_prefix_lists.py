#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
# The one module of this collection that is not a Rust binary: it speaks the EC2 API through
# boto3 (request signing, TLS, retries), as the amazon.aws modules do, and runs where they run
# (the controller). amazon.aws has no module for customer-managed prefix lists.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_prefix_lists
short_description: Keep this collection's AWS customer-managed prefix lists equal to a list of CIDRs
version_added: "0.1.0"
description:
  - Converges the customer-managed prefix lists named in O(lists) (the Entra ID lists of
    C(vorfw plan --format aws-sg)) to exactly the given entries - creating a list that does not
    exist, adding and removing entries (at most 100 of each per request, waiting for each
    modification to complete), raising or lowering its C(max_entries).
  - Owns only lists that carry every tag of O(tags). A list under one of the names without them is
    someone else's - the module fails and changes nothing. With O(purge=true), lists that carry
    the tags and are not in O(lists) are deleted (a list still referenced by a security group
    cannot be deleted; converge the groups first).
  - Every list is checked before anything is changed - CIDRs of the list's family, no more entries
    than O(lists[].max_entries) - so bad input fails with nothing touched.
  - Credentials come from boto3's usual chain (environment, shared files, instance role).
author:
  - vorstream.firewall contributors (!UNKNOWN)
requirements:
  - boto3
options:
  lists:
    description: The lists to converge.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The prefix list's name.
        type: str
        required: true
      address_family:
        description: The family of every entry.
        type: str
        required: true
        choices: [IPv4, IPv6]
      max_entries:
        description: The list's C(max_entries) (every security group rule that references the list counts as this many rules).
        type: int
        required: true
      entries:
        description: The CIDRs, exactly (order and duplicates do not matter; host bits must be zero).
        type: list
        elements: str
        required: true
  tags:
    description: The tags that mark a list as this collection's; set on the lists it creates.
    type: dict
    required: true
  purge:
    description: Delete the lists that carry O(tags) and are not in O(lists).
    type: bool
    default: false
  region:
    description: The AWS region.
    type: str
    required: true
  endpoint_url:
    description: An EC2 endpoint URL (an emulator, a VPC endpoint); empty uses the region's.
    type: str
    default: ""
  profile:
    description: A named profile of the shared AWS configuration; empty uses boto3's default chain.
    type: str
    default: ""
  wait_timeout:
    description: Seconds to wait for a list's creation or modification to complete.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    description: Nothing is changed; the result shows what would be created, changed and deleted.
  diff_mode:
    support: full
    description: Each list's entries before and after.
  platform:
    support: full
    description: Runs where boto3 is installed, normally the controller.
    platforms: posix
"""

EXAMPLES = r"""
- name: Keep the Entra ID prefix lists current
  vorstream.firewall.aws_prefix_lists:
    region: eu-west-1
    tags: {managed-by: vorstream.firewall}
    lists:
      - {name: vorfw-entra-ipv4, address_family: IPv4, max_entries: 300, entries: ["20.190.128.0/18", "40.126.0.0/18"]}
      - {name: vorfw-entra-ipv6, address_family: IPv6, max_entries: 300, entries: ["2603:1006:2000::/48"]}
"""

RETURN = r"""
prefix_lists:
  description:
    - Each list of O(lists) by name - C(id), C(version), C(max_entries), C(address_family), C(entries) (sorted).
    - In check mode a list still to be created has C(id) V(null).
  returned: success
  type: dict
created:
  description: Names of the lists created.
  returned: success
  type: list
  elements: str
deleted:
  description: Names of the lists deleted (O(purge=true)).
  returned: success
  type: list
  elements: str
changes:
  description: Per changed list, C(added) and C(removed) entries and C(max_entries) as C(before) and C(after).
  returned: success
  type: dict
"""

import ipaddress
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    HAS_BOTO3 = False
    BOTO3_ERROR = traceback.format_exc()
else:
    HAS_BOTO3 = True
    BOTO3_ERROR = None

# EC2's own limits: entries per Create/Modify request (each of AddEntries, RemoveEntries), and
# max_entries of one customer-managed prefix list.
BATCH = 100
MAX_ENTRIES = 1000


class Failure(Exception):
    """A message for fail_json, raised before or instead of a change."""


def wanted_entries(spec):
    """The list's entries as normalized CIDR strings; Failure names the list and the entry."""
    family = ipaddress.IPv4Network if spec["address_family"] == "IPv4" else ipaddress.IPv6Network
    out = set()
    for e in spec["entries"]:
        try:
            net = ipaddress.ip_network(str(e).strip(), strict=True)
        except ValueError as err:
            raise Failure(f"prefix list {spec['name']}: entry {e!r} is not a CIDR ({err})") from None
        if not isinstance(net, family):
            raise Failure(f"prefix list {spec['name']} is {spec['address_family']}: entry {e!r} is not")
        out.add(str(net))
    n = spec["max_entries"]
    if not 1 <= n <= MAX_ENTRIES:
        raise Failure(f"prefix list {spec['name']}: max_entries {n} is outside EC2's 1..{MAX_ENTRIES}")
    if len(out) > n:
        raise Failure(f"prefix list {spec['name']} would hold {len(out)} entries, more than its max_entries of {n} "
                      f"(raise max_entries, at most {MAX_ENTRIES}; every rule that references the list counts as that many)")
    return out


def has_tags(pl, tags):
    got = {t["Key"]: t["Value"] for t in pl.get("Tags") or []}
    return all(got.get(k) == v for k, v in tags.items())


class PrefixLists:
    """EC2 calls on customer-managed prefix lists."""

    def __init__(self, client, wait_timeout):
        self.ec2 = client
        self.wait_timeout = wait_timeout

    def by_name(self):
        """Customer-managed prefix lists (not AWS's own) by name; a name held twice is refused."""
        out = {}
        for page in self.ec2.get_paginator("describe_managed_prefix_lists").paginate():
            for pl in page["PrefixLists"]:
                # AWS's own lists, and lists on their way out (EC2 shows them for a while).
                if pl.get("OwnerId") == "AWS" or pl.get("State", "").startswith("delete-"):
                    continue
                name = pl["PrefixListName"]
                if name in out:
                    raise Failure(f"two prefix lists are named {name} ({out[name]['PrefixListId']}, "
                                  f"{pl['PrefixListId']}); which one is meant is not clear")
                out[name] = pl
        return out

    def entries(self, pl_id):
        out = set()
        for page in self.ec2.get_paginator("get_managed_prefix_list_entries").paginate(PrefixListId=pl_id):
            out.update(str(ipaddress.ip_network(e["Cidr"], strict=False)) for e in page["Entries"])
        return out

    def wait(self, pl_id):
        """The list once its last change completed; Failure if it failed or did not complete in time."""
        deadline = time.monotonic() + self.wait_timeout
        while True:
            [pl] = self.ec2.describe_managed_prefix_lists(PrefixListIds=[pl_id])["PrefixLists"]
            state = pl.get("State", "")
            if state.endswith("-complete"):
                return pl
            if state.endswith("-failed"):
                raise Failure(f"prefix list {pl['PrefixListName']} ({pl_id}): {state}: {pl.get('StateMessage', '')}")
            if time.monotonic() > deadline:
                raise Failure(f"prefix list {pl['PrefixListName']} ({pl_id}) is still {state} after {self.wait_timeout} s")
            time.sleep(2)

    def create(self, spec, entries, tags):
        first, *rest = batches(sorted(entries))
        pl = self.ec2.create_managed_prefix_list(
            PrefixListName=spec["name"], AddressFamily=spec["address_family"], MaxEntries=spec["max_entries"],
            Entries=[{"Cidr": c} for c in first],
            TagSpecifications=[{"ResourceType": "prefix-list",
                                "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}])["PrefixList"]
        pl = self.wait(pl["PrefixListId"])
        for chunk in rest:
            pl = self.modify(pl, AddEntries=[{"Cidr": c} for c in chunk])
        return pl

    def modify(self, pl, **change):
        self.ec2.modify_managed_prefix_list(PrefixListId=pl["PrefixListId"], CurrentVersion=pl["Version"], **change)
        return self.wait(pl["PrefixListId"])

    def update(self, pl, entries, have, max_entries):
        """Removals first (room for the additions), then additions; max_entries raised before
        the additions and lowered after the removals (EC2 takes it alone in a request)."""
        if max_entries > pl["MaxEntries"]:
            pl = self.modify(pl, MaxEntries=max_entries)
        for chunk in batches(sorted(have - entries)):
            pl = self.modify(pl, RemoveEntries=[{"Cidr": c} for c in chunk])
        for chunk in batches(sorted(entries - have)):
            pl = self.modify(pl, AddEntries=[{"Cidr": c} for c in chunk])
        if max_entries < pl["MaxEntries"]:
            pl = self.modify(pl, MaxEntries=max_entries)
        return pl

    def delete(self, pl):
        self.ec2.delete_managed_prefix_list(PrefixListId=pl["PrefixListId"])


def batches(items):
    return [items[i:i + BATCH] for i in range(0, len(items), BATCH)] or [[]]


def converge(api, params, check_mode):
    """Check every list first, then change; the result dict for exit_json."""
    tags = {str(k): str(v) for k, v in params["tags"].items()}
    specs = params["lists"]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise Failure(f"lists: a name is given twice ({', '.join(sorted(n for n in set(names) if names.count(n) > 1))})")
    wanted = {s["name"]: wanted_entries(s) for s in specs}
    live = api.by_name()
    for s in specs:
        pl = live.get(s["name"])
        if pl is not None and not has_tags(pl, tags):
            raise Failure(f"prefix list {s['name']} ({pl['PrefixListId']}) exists without the tags "
                          f"{', '.join(f'{k}={v}' for k, v in sorted(tags.items()))}: it is not ours to change "
                          "(rename or tag it)")
        if pl is not None and pl["AddressFamily"] != s["address_family"]:
            raise Failure(f"prefix list {s['name']} ({pl['PrefixListId']}) is {pl['AddressFamily']}, the plan's is "
                          f"{s['address_family']}; EC2 cannot change a list's family (delete it, the next run creates it)")
    result = {"changed": False, "prefix_lists": {}, "created": [], "deleted": [], "changes": {},
              "diff": {"before": {}, "after": {}}}
    for s in specs:
        name = s["name"]
        entries = wanted[name]
        pl = live.get(name)
        have = api.entries(pl["PrefixListId"]) if pl else set()
        before_max = pl["MaxEntries"] if pl else None
        if pl is None or have != entries or before_max != s["max_entries"]:
            result["changed"] = True
            result["changes"][name] = {"added": sorted(entries - have), "removed": sorted(have - entries),
                                       "max_entries": {"before": before_max, "after": s["max_entries"]}}
            result["diff"]["before"][name] = sorted(have) if pl else None
            result["diff"]["after"][name] = sorted(entries)
            if pl is None:
                result["created"].append(name)
            if not check_mode:
                pl = api.create(s, entries, tags) if pl is None else api.update(pl, entries, have, s["max_entries"])
        result["prefix_lists"][name] = {
            "id": pl["PrefixListId"] if pl else None, "version": pl["Version"] if pl else None,
            "max_entries": s["max_entries"], "address_family": s["address_family"], "entries": sorted(entries)}
    if params["purge"]:
        for name, pl in sorted(live.items()):
            if name in wanted or not has_tags(pl, tags):
                continue
            result["changed"] = True
            result["deleted"].append(name)
            result["diff"]["before"][name] = sorted(api.entries(pl["PrefixListId"]))
            result["diff"]["after"][name] = None
            if not check_mode:
                api.delete(pl)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "lists": {"type": "list", "elements": "dict", "default": [], "options": {
                "name": {"type": "str", "required": True},
                "address_family": {"type": "str", "required": True, "choices": ["IPv4", "IPv6"]},
                "max_entries": {"type": "int", "required": True},
                "entries": {"type": "list", "elements": "str", "required": True},
            }},
            "tags": {"type": "dict", "required": True},
            "purge": {"type": "bool", "default": False},
            "region": {"type": "str", "required": True},
            "endpoint_url": {"type": "str", "default": ""},
            "profile": {"type": "str", "default": ""},
            "wait_timeout": {"type": "int", "default": 300},
        },
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_ERROR)
    p = module.params
    if not p["tags"]:
        module.fail_json(msg="tags: give at least one tag; they are what marks a list as ours")
    try:
        session = boto3.session.Session(profile_name=p["profile"] or None, region_name=p["region"])
        client = session.client("ec2", endpoint_url=p["endpoint_url"] or None)
        result = converge(PrefixLists(client, p["wait_timeout"]), p, module.check_mode)
    except Failure as err:
        module.fail_json(msg=str(err))
    except (BotoCoreError, ClientError) as err:
        module.fail_json(msg=f"EC2: {err}", exception=traceback.format_exc())
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
