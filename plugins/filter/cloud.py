# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Filters of the cloud_security_groups role: the plan's cloud rules in the arguments of
amazon.aws.ec2_security_group and azure.azcollection.azure_rm_securitygroup."""
from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# Rules this collection creates carry descriptions starting with this (the plan writes them).
OWNED_PREFIX = "vorfw "
ASG_REF = re.compile(r"^\[resourceId\('Microsoft\.Network/applicationSecurityGroups', '([^']+)'\)\]$")


def _foreign(permissions):
    """Rules in a security group that this collection did not write, as the module takes them."""
    out = []
    for p in permissions or []:
        base = {"proto": p.get("ip_protocol")}
        if p.get("from_port") is not None:
            base["from_port"] = p["from_port"]
            base["to_port"] = p["to_port"]
        kinds = (("ip_ranges", "cidr_ip", "cidr_ip"), ("ipv6_ranges", "cidr_ipv6", "cidr_ipv6"),
                 ("prefix_list_ids", "prefix_list_id", "ip_prefix"), ("user_id_group_pairs", "group_id", "group_id"))
        for field, key, arg in kinds:
            for src in p.get(field) or []:
                desc = src.get("description") or ""
                if desc.startswith(OWNED_PREFIX):
                    continue
                rule = dict(base)
                rule[arg] = src[key]
                if desc:
                    rule["rule_desc"] = desc
                out.append(rule)
    return out


def aws_sg_rules(group, current, prefix_list_ids, direction="rules"):
    """The rules to give ec2_security_group for one planned group: the plan's (prefix lists
    named by the plan replaced by their ids) and the foreign rules already in the group (kept,
    so purging removes only stale rules of ours)."""
    ids = prefix_list_ids or {}
    out = []
    for r in group.get(direction, []):
        r = dict(r)
        if "ip_prefix" in r:
            name = r["ip_prefix"]
            if not ids.get(name):
                raise AnsibleFilterError(
                    f"security group {group['name']}: the prefix list {name} has no id: "
                    f"cloud_security_groups_aws_prefix_list_ids names {', '.join(sorted(ids)) or 'none'}; give the id "
                    "of every list the plan names, or none (the role then keeps its own lists)")
            r["ip_prefix"] = ids[name]
        if r.get("proto") == "all":
            r["proto"] = "-1"
        out.append(r)
    if current:
        field = "ip_permissions" if direction == "rules" else "ip_permissions_egress"
        out.extend(_foreign(current.get(field)))
    return out


def aws_prefix_list_specs(prefix_lists, fetched):
    """The plan's prefix lists (C(prefix_lists) of the aws-sg plan) with their entries, the
    effective list of the controller's `vorfw-entra fetch --format json` for the list's family,
    as vorstream.firewall.aws_prefix_lists takes them."""
    effective = (fetched or {}).get("effective")
    if not isinstance(effective, dict):
        raise AnsibleFilterError("the Entra ID fetch result has no effective list (is vorfw-entra older than the role?)")
    out = []
    for pl in prefix_lists:
        family = pl["address_family"]
        key = {"IPv4": "ipv4", "IPv6": "ipv6"}.get(family)
        if key is None:
            raise AnsibleFilterError(f"prefix list {pl['name']}: address family {family!r} is neither IPv4 nor IPv6")
        entries = list(effective.get(key) or [])
        if len(entries) > pl["max_entries"]:
            raise AnsibleFilterError(
                f"prefix list {pl['name']}: the Entra ID list has {len(entries)} {family} prefixes, more than the list's "
                f"max_entries of {pl['max_entries']}; raise cloud_security_groups_aws_prefix_list_entries (EC2 allows "
                "1000; every rule that references the list counts as that many against the rules quota)")
        out.append({"name": pl["name"], "address_family": family, "max_entries": pl["max_entries"], "entries": entries})
    return out


def _asg(ref):
    m = ASG_REF.match(ref.get("id", ""))
    if not m:
        raise AnsibleFilterError(f"not an application security group reference: {ref}")
    return m.group(1)


def azure_nsg_rules(nsg):
    """An ARM template's NSG resource as azure_rm_securitygroup's rules."""
    out = []
    for rule in nsg["properties"]["securityRules"]:
        p = rule["properties"]
        r = {
            "name": rule["name"],
            "description": p.get("description", ""),
            "protocol": p["protocol"],
            "source_port_range": p["sourcePortRange"],
            "destination_port_range": p["destinationPortRange"],
            "access": p["access"],
            "priority": p["priority"],
            "direction": p["direction"],
        }
        for side in ("source", "destination"):
            if f"{side}ApplicationSecurityGroups" in p:
                r[f"{side}_application_security_groups"] = [_asg(a) for a in p[f"{side}ApplicationSecurityGroups"]]
            elif f"{side}AddressPrefixes" in p:
                r[f"{side}_address_prefix"] = list(p[f"{side}AddressPrefixes"])
            else:
                r[f"{side}_address_prefix"] = p[f"{side}AddressPrefix"]
        out.append(r)
    return out


class FilterModule:
    """The role's filters."""

    def filters(self):
        return {"aws_sg_rules": aws_sg_rules, "aws_prefix_list_specs": aws_prefix_list_specs,
                "azure_nsg_rules": azure_nsg_rules}
