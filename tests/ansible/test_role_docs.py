"""Each role's README and its meta/argument_specs.yml (what Ansible validates) agree: the README's
Variables table lists exactly the options, each with the spec's type, default and choices; every
role variable the README names exists; defaults/main.yml sets only documented options, to the
documented defaults."""
from __future__ import annotations

import re

import pytest
import yaml

from helpers import ROOT

ROLES = sorted(d.name for d in (ROOT / "roles").iterdir() if d.is_dir())
# | `name` | type | default | meaning |
ROW = re.compile(r"^\| `(?P<name>\w+)` \| (?P<type>[^|]+) \| (?P<default>[^|]+) \| (?P<meaning>.+) \|$")


def options(role: str) -> dict:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    merged: dict = {}
    for entry_point in specs.values():
        merged.update(entry_point.get("options", {}))
    return merged


def readme(role: str) -> str:
    return (ROOT / "roles" / role / "README.md").read_text()


def documented(role: str) -> dict[str, re.Match]:
    """The README's Variables table, by variable name; a name listed twice fails."""
    section = readme(role).split("\n## Variables\n", 1)
    assert len(section) == 2, f"roles/{role}/README.md has no '## Variables' section"
    rows: dict[str, re.Match] = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        m = ROW.match(line)
        if m:
            assert m["name"] not in rows, f"{role}: {m['name']} documented twice"
            rows[m["name"]] = m
    return rows


def spec_type(option: dict) -> str:
    return f"`{option['type']}`" + (f" of `{option['elements']}`" if "elements" in option else "")


def test_every_role_is_covered():
    assert ROLES == ["cloud_security_groups", "entra_egress", "host_firewall", "verify"]


@pytest.mark.parametrize("role", ROLES)
def test_readme_documents_exactly_the_argument_specs(role):
    specs, rows = options(role), documented(role)
    assert specs, role
    assert sorted(set(specs) - set(rows)) == [], f"{role}: options missing from the README"
    assert sorted(set(rows) - set(specs)) == [], f"{role}: README documents variables the role does not have"


@pytest.mark.parametrize("role", ROLES)
def test_readme_types_defaults_and_choices_are_the_specs(role):
    specs, rows = options(role), documented(role)
    for name, row in rows.items():
        spec = specs[name]
        assert row["type"].strip() == spec_type(spec), (name, row["type"])
        cell = row["default"].strip()
        if "default" in spec:
            # The default is the cell's first code span, read as YAML (so `[]`, `true`, `"10%"`).
            literal = re.match(r"`([^`]*)`", cell)
            assert literal, (name, cell)
            value = yaml.safe_load(literal.group(1))
            assert (type(value), value) == (type(spec["default"]), spec["default"]), (name, cell, spec["default"])
        else:
            # No default in the spec: the README may say where the value comes from, but must not
            # show a literal as if it were the default.
            assert not cell.startswith("`"), (name, cell)
        for choice in spec.get("choices", []):
            assert f"`{choice}`" in row.group(0), (name, choice)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_variable_the_readme_names_exists(role):
    """Prose too: a variable named anywhere in the README is an option or a registered result."""
    registered = set()
    for tasks in (ROOT / "roles" / role / "tasks").glob("*.yml"):
        registered |= set(re.findall(r"^\s*register: (\w+)$", tasks.read_text(), re.M))
    known = set(options(role)) | registered
    named = set(re.findall(rf"\b{role}_\w+", readme(role)))
    assert named, role
    assert sorted(named - known) == [], role


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_are_documented_and_agree(role):
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    specs = options(role)
    assert sorted(set(defaults) - set(specs)) == [], f"{role}: defaults/main.yml sets undocumented variables"
    for name, value in defaults.items():
        if "default" in specs[name]:
            assert value == specs[name]["default"], name
        else:
            assert isinstance(value, str) and "{{" in value, (name, "a literal default belongs in the spec")
