"""Azure, offline (no emulator exists): the ARM templates of `vorfw plan --format azure-nsg`
read by the Azure SDK's own models (azure-mgmt-network) and checked against Azure's limits; the
role's module arguments validated against azure_rm_securitygroup's and
azure_rm_applicationsecuritygroup's own argument specs, taken from the installed collection,
and turned into the SDK's SecurityRule objects by the module's own functions."""
from __future__ import annotations

import importlib
import json
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from azure.mgmt.network import models

from helpers import ROOT

GOLDEN = ROOT / "tests" / "golden" / "cloud"
TEMPLATES = sorted(GOLDEN.glob("*/azure-nsg.*.json"))
TASKS = ROOT / "roles" / "cloud_security_groups" / "tasks" / "azure.yml"


def test_every_golden_template_is_checked():
    names = {f"{p.parent.name}/{p.name}" for p in TEMPLATES}
    assert names == {f"{i}/azure-nsg.{c}.json" for i in ("multi-tier.yml", "single-tier.ini")
                     for c in ("open", "restricted", "service")}


def resources(path, kind):
    return [r for r in json.loads(path.read_text())["resources"] if r["type"] == f"Microsoft.Network/{kind}"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_sdk_reads_the_template_and_it_keeps_azures_limits(path):
    asgs = {r["name"] for r in resources(path, "applicationSecurityGroups")}
    assert asgs and all(models.ApplicationSecurityGroup.deserialize(r).name for r in resources(path, "applicationSecurityGroups"))
    nsgs = resources(path, "networkSecurityGroups")
    assert nsgs
    for res in nsgs:
        nsg = models.NetworkSecurityGroup.deserialize(res)
        assert nsg.name == res["name"] and nsg.tags["managed-by"] == "vorstream.firewall"
        rules = nsg.security_rules
        assert len(rules) == len(res["properties"]["securityRules"]) and 1 < len(rules) <= 1000
        for d in ("Inbound", "Outbound"):
            prios = [r.priority for r in rules if r.direction == d]
            assert len(prios) == len(set(prios)), (res["name"], d)
        for r in rules:
            assert 100 <= r.priority <= 4096 and len(r.name) <= 80 and len(r.description or "") <= 140, r.name
            assert r.access in ("Allow", "Deny") and r.protocol in ("Tcp", "Udp", "*"), r.name
            # Exactly one way of naming each end, and every ASG named is in the template.
            for side in ("source", "destination"):
                kinds = [getattr(r, f"{side}_address_prefix"), getattr(r, f"{side}_address_prefixes"),
                         getattr(r, f"{side}_application_security_groups")]
                assert sum(1 for k in kinds if k) == 1, (r.name, side, kinds)
                for a in getattr(r, f"{side}_application_security_groups") or []:
                    assert a.id.split("'")[-2] in asgs, a.id
                prefixes = getattr(r, f"{side}_address_prefixes") or []
                assert len({":" in p for p in prefixes}) <= 1, (r.name, "IPv4 and IPv6 mixed")
        # The round trip gives back the template's rules.
        assert nsg.serialize()["properties"]["securityRules"] == res["properties"]["securityRules"]


def load_module(cloud_collections, name):
    if str(cloud_collections) not in sys.path:
        sys.path.insert(0, str(cloud_collections))
    return importlib.import_module(f"ansible_collections.azure.azcollection.plugins.modules.{name}")


def arg_spec(cloud_collections, module, cls):
    """The module's own argument spec: its class builds it and hands it to AzureRMModuleBase,
    stopped here before it would authenticate."""
    mod = load_module(cloud_collections, module)
    captured = {}

    class Stop(Exception):
        pass

    def init(self, derived_arg_spec, **kwargs):
        captured.update(derived_arg_spec)
        raise Stop

    base = mod.AzureRMModuleBase
    orig = base.__init__
    base.__init__ = init
    try:
        with pytest.raises(Stop):
            getattr(mod, cls)()
    finally:
        base.__init__ = orig
    common = importlib.import_module("ansible_collections.azure.azcollection.plugins.module_utils.azure_rm_common")
    spec = dict(captured)
    spec.update(common.AZURE_COMMON_ARGS)
    spec["tags"] = {"type": "dict"}
    spec["append_tags"] = {"type": "bool", "default": True}
    return mod, spec


def role_tasks(module):
    tasks = yaml.safe_load(TASKS.read_text())
    found = [t[f"azure.azcollection.{module}"] for t in tasks if f"azure.azcollection.{module}" in t]
    assert found, module
    return found


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_roles_arguments_pass_the_modules_own_argument_specs(path, cloud_collections):
    from ansible_collections.vorstream.firewall.plugins.filter.cloud import azure_nsg_rules  # pylint: disable=import-outside-toplevel

    mod, spec = arg_spec(cloud_collections, "azure_rm_securitygroup", "AzureRMSecurityGroup")
    # Every option the role's tasks give the module is one it has.
    for task in role_tasks("azure_rm_securitygroup"):
        assert set(task) <= set(spec), set(task) - set(spec)
    validator = ArgumentSpecValidator(spec)
    for res in resources(path, "networkSecurityGroups"):
        args = {"resource_group": "vorstream-rg", "name": res["name"], "tags": res["tags"],
                "rules": azure_nsg_rules(res), "purge_rules": True}
        result = validator.validate(args)
        assert not result.error_messages, (res["name"], result.error_messages)
        rules = result.validated_parameters["rules"]

        class Module:  # the attributes the module's rule functions read
            nsg_models = models
            subscription_id = "00000000-0000-0000-0000-000000000000"
            resource_group = "vorstream-rg"

        fake = Module()
        want = {r["name"]: models.SecurityRule.deserialize(r) for r in res["properties"]["securityRules"]}
        for rule in rules:
            mod.validate_rule(fake, rule)
            mod.AzureRMSecurityGroup.convert_asg_to_id(fake, rule)
            got = mod.create_rule_instance(fake, rule)
            w = want[rule["name"]]
            for attr in ("priority", "direction", "access", "protocol", "destination_port_range",
                         "source_address_prefix", "destination_address_prefix",
                         "source_address_prefixes", "destination_address_prefixes"):
                assert (getattr(got, attr) or None) == (getattr(w, attr) or None), (rule["name"], attr)
            for side in ("source", "destination"):
                g = [a.id.rsplit("/", 1)[-1] for a in getattr(got, f"{side}_application_security_groups") or []]
                e = [a.id.split("'")[-2] for a in getattr(w, f"{side}_application_security_groups") or []]
                assert g == e, (rule["name"], side)
        assert {r["name"] for r in rules} == set(want)


def test_the_asg_tasks_pass_the_modules_own_argument_spec(cloud_collections):
    _mod, spec = arg_spec(cloud_collections, "azure_rm_applicationsecuritygroup", "AzureRMApplicationSecurityGroup")
    for task in role_tasks("azure_rm_applicationsecuritygroup"):
        assert set(task) <= set(spec), set(task) - set(spec)
    validator = ArgumentSpecValidator(spec)
    for res in resources(TEMPLATES[0], "applicationSecurityGroups"):
        result = validator.validate({"resource_group": "vorstream-rg", "name": res["name"], "tags": res["tags"]})
        assert not result.error_messages, result.error_messages
