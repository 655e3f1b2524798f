"""Every variable the host_firewall role documents is accepted, set in the inventory or with
-e, and the role's own switch host_firewall_plan_only plans without touching a host."""
from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from helpers import ROOT, run

SPECS = yaml.safe_load((ROOT / "roles" / "host_firewall" / "meta" / "argument_specs.yml").read_text())
OPTIONS = SPECS["argument_specs"]["main"]["options"]
# Values for the variables that have no default.
SAMPLES = {
    "host_firewall_management_sources": ["192.0.2.10/32"],
    "host_firewall_address": "10.0.0.1",
    "host_firewall_dns_servers": ["10.0.0.53"],
    "host_firewall_controller_address": "10.0.0.254",
    "host_firewall_oidc_providers": [{"issuer": "https://kc.example.com/realms/vor", "name": "keycloak"}],
}
VALUES = {k: (SAMPLES[k] if "default" not in o else o["default"]) for k, o in OPTIONS.items()}
VALUES["host_firewall_plan_only"] = True  # nothing may be applied here


def converge(tmp_path, inventory_vars: dict, extra: dict):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"compute": {"hosts": {"h1": {
        "ansible_connection": "local", "ansible_host": "10.0.0.1", **inventory_vars}}}}}}))
    pb = tmp_path / "pb.yml"
    pb.write_text(textwrap.dedent("""
        - hosts: all
          gather_facts: false
          roles:
            - vorstream.firewall.host_firewall
        """))
    args = ["ansible-playbook", "-i", inv, pb, "-v"]
    if extra:
        args += ["-e", json.dumps(extra)]
    return run(args)


def test_every_documented_variable_is_covered():
    assert set(VALUES) == set(OPTIONS) and len(VALUES) >= 19


@pytest.mark.parametrize("where", ["inventory", "extra vars"])
def test_every_documented_variable_is_accepted(tmp_path, where):
    r = converge(tmp_path, VALUES if where == "inventory" else {}, VALUES if where == "extra vars" else {})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "unknown variable" not in r.stdout
    assert "Plan every host's firewall" in r.stdout
    # plan_only: the plan ran, the apply was skipped.
    assert "skipping: [h1]" in r.stdout.split("Enforce this host's plan")[1], r.stdout[-2000:]


def test_plan_only_as_a_string_from_the_command_line(tmp_path):
    # `-e host_firewall_plan_only=true` (a string): the documented switch, not an unknown variable.
    inv = tmp_path / "inventory.ini"
    inv.write_text("[compute]\nh1 ansible_connection=local ansible_host=10.0.0.1\n")
    pb = tmp_path / "pb.yml"
    pb.write_text("- hosts: all\n  gather_facts: false\n  roles:\n    - vorstream.firewall.host_firewall\n")
    r = run(["ansible-playbook", "-i", inv, pb, "-e", "host_firewall_plan_only=true"])
    assert r.returncode == 0, r.stdout[-3000:]
    assert "skipping: [h1]" in r.stdout.split("Enforce this host's plan")[1]
