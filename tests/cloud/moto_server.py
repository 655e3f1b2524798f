"""moto's server for the cloud tests, with the EC2 defects that the tests meet corrected first.

Run as `python tests/cloud/moto_server.py -H 127.0.0.1 -p PORT` (tests/cloud/conftest.py does);
the arguments are moto_server's. Each patch below names the moto release it was written
against (the one tests/cloud/requirements.txt pins), the defect, and what EC2 does according to
the EC2 API reference; each makes moto behave as EC2 does, whatever the role under test does.
`patch()` refuses to run on another moto release, so that a new pin is checked again by hand
(the patches may no longer be needed, or no longer fit) rather than silently applied.
"""
from __future__ import annotations

import functools
import inspect
import sys
from importlib.metadata import version

PATCHED_MOTO = "5.2.5"


def patch() -> None:
    """Apply the patches to moto's EC2 models and responses (in this process only)."""
    found = version("moto")
    if found != PATCHED_MOTO:
        raise SystemExit(f"tests/cloud/moto_server.py was written against moto {PATCHED_MOTO}, this is "
                         f"moto {found}: check whether its patches are still needed and still fit, then "
                         "update PATCHED_MOTO")
    # Imported only once the version is the one checked.
    # pylint: disable=import-outside-toplevel
    from moto.core.responses import ActionResult
    from moto.ec2.models.security_groups import SecurityGroup, SecurityGroupBackend, SecurityGroupRule
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.managed_prefixes import ManagedPrefixListBackend
    from moto.ec2.responses.security_groups import SecurityGroups
    from moto.ec2.responses.vpcs import VPCs

    # 1. moto 5.2.5 drops the description of a prefix-list reference in a security group rule:
    #    SecurityGroupRule.__init__ keeps only prefix_list_id["PrefixListId"] of the request's
    #    PrefixListIds item (the request parser does pass {"PrefixListId", "Description"}), so
    #    DescribeSecurityGroups (SecurityGroup._flattened_rules renders {"PrefixListId"} alone),
    #    DescribeSecurityGroupRules and the SecurityGroupRules of Authorize* return none.
    #    EC2 (API reference, data type PrefixListId: "Description - A description for the
    #    security group rule that references this prefix list ID") stores it with the rule and
    #    returns it in IpPermissions[].PrefixListIds[].Description and in
    #    SecurityGroupRule.Description, ingress and egress alike.
    init = SecurityGroupRule.__init__
    rule_params = inspect.signature(init)

    @functools.wraps(init)
    def rule_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        ref = rule_params.bind(self, *args, **kwargs).arguments.get("prefix_list_id")
        self.prefix_list_description = (ref or {}).get("Description")

    SecurityGroupRule.__init__ = rule_init

    cidr_description = SecurityGroupRule.description

    def description(self):
        if self.prefix_list_id:
            return getattr(self, "prefix_list_description", None)
        return cidr_description.fget(self)

    SecurityGroupRule.description = property(description)

    flattened = SecurityGroup._flattened_rules  # pylint: disable=protected-access

    @functools.wraps(flattened)
    def flattened_rules(self, rules):
        views = flattened(self, rules)
        # One rule per (protocol, ports, prefix list) and direction: moto, like EC2, refuses a duplicate.
        described = {(r.ip_protocol, r.from_port, r.to_port, r.prefix_list_id): r.description
                     for r in rules if r.prefix_list_id and r.description is not None}
        for view in views:
            for ref in view.prefix_list_ids:
                key = (view.ip_protocol, view.from_port, view.to_port, ref["PrefixListId"])
                if key in described:
                    ref["Description"] = described[key]
        return views

    SecurityGroup._flattened_rules = flattened_rules  # pylint: disable=protected-access

    # 2. moto 5.2.5's UpdateSecurityGroupRuleDescriptions{Ingress,Egress} ignore a prefix-list
    #    reference (SecurityGroupBackend._sg_update_description handles CIDRs and groups only).
    #    EC2 (API reference, UpdateSecurityGroupRuleDescriptionsEgress/-Ingress) replaces or adds
    #    the description of the matching rule, prefix-list references included, and removes it
    #    when the request omits the description.
    update = SecurityGroupBackend._sg_update_description  # pylint: disable=protected-access

    @functools.wraps(update)
    def sg_update_description(self, security_rule, rule):
        update(self, security_rule, rule)
        if security_rule.prefix_list_id and security_rule.prefix_list_id == rule.prefix_list_id:
            rule.prefix_list_description = security_rule.prefix_list_description

    SecurityGroupBackend._sg_update_description = sg_update_description  # pylint: disable=protected-access

    # 3. moto 5.2.5's UpdateSecurityGroupRuleDescriptions{Ingress,Egress} answer an empty result,
    #    without `Return`. EC2 (API reference, the same actions, Response Elements: "return -
    #    Returns true if the request succeeds; otherwise, returns an error") answers
    #    <return>true</return>; amazon.aws reads response["Return"].
    def returning_true(action):
        @functools.wraps(action)
        def wrapper(self):
            action(self)  # raises the EC2 error a failed request gets
            return ActionResult({"Return": True})
        return wrapper

    for name in ("update_security_group_rule_descriptions_ingress", "update_security_group_rule_descriptions_egress"):
        setattr(SecurityGroups, name, returning_true(getattr(SecurityGroups, name)))

    # 4. moto 5.2.5's ModifyManagedPrefixList (ManagedPrefixListBackend.modify_managed_prefix_list
    #    and VPCs.modify_managed_prefix_list) sets the list's name to None when the request has no
    #    PrefixListName, ignores MaxEntries, and applies a change made against any CurrentVersion.
    #    EC2 (API reference, ModifyManagedPrefixList: "PrefixListName - A name for the prefix
    #    list", optional; "MaxEntries - The maximum number of entries for the prefix list. You
    #    cannot modify the entries of a prefix list and modify the size of a prefix list at the
    #    same time"; "CurrentVersion - The current version of the prefix list") keeps the name
    #    unless one is given, resizes the list, and refuses a stale version
    #    (PrefixListVersionMismatch), so that two writers cannot lose each other's entries.
    modify_pl = ManagedPrefixListBackend.modify_managed_prefix_list

    @functools.wraps(modify_pl)
    def modify_managed_prefix_list(self, add_entry, remove_entry, prefix_list_id=None, current_version=None,
                                   prefix_list_name=None, max_entries=None):
        pl = self.managed_prefix_lists.get(prefix_list_id)
        if pl is not None and current_version is not None and current_version != pl.version:
            raise EC2ClientError("PrefixListVersionMismatch",
                                 f"The prefix list {prefix_list_id} is at version {pl.version}, not {current_version}.")
        if pl is not None and max_entries is not None and (add_entry or remove_entry):
            raise EC2ClientError("InvalidParameterCombination",
                                 "You cannot modify the entries and the size of a prefix list at the same time.")
        name = pl.prefix_list_name if pl is not None else None
        out = modify_pl(self, add_entry, remove_entry, prefix_list_id, current_version, prefix_list_name or name)
        if max_entries is not None:
            out.max_entries = int(max_entries)
        return out

    ManagedPrefixListBackend.modify_managed_prefix_list = modify_managed_prefix_list

    modify_response = VPCs.modify_managed_prefix_list

    @functools.wraps(modify_response)
    def modify_managed_prefix_list_response(self):
        max_entries = self._get_param("MaxEntries")  # pylint: disable=protected-access
        backend = self.ec2_backend
        original = backend.modify_managed_prefix_list
        backend.modify_managed_prefix_list = functools.partial(original, max_entries=max_entries)
        try:
            return modify_response(self)
        finally:
            del backend.modify_managed_prefix_list

    VPCs.modify_managed_prefix_list = modify_managed_prefix_list_response


def main(argv: list[str] | None = None) -> None:
    patch()
    from moto.server import main as moto_main  # pylint: disable=import-outside-toplevel

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
