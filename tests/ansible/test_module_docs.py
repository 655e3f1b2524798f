"""Facts written in two languages agree: each module's documented options are exactly the options
its Rust binary (or action plugin) accepts, and documented defaults are the code's defaults."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from helpers import ROOT, run

MODULES = ROOT / "plugins" / "modules"


def documented(module: str) -> dict:
    text = (MODULES / f"{module}.py").read_text()
    doc = re.search(r'DOCUMENTATION = r"""(.*?)"""', text, re.S).group(1)
    return yaml.safe_load(doc)["options"]


def accepted_by_binary(module: str, tmp_path) -> set[str]:
    """Ask the binary itself: an unknown argument is refused with the list it supports."""
    args = tmp_path / "args"
    args.write_text(json.dumps({"__vorfw_not_an_option__": 1, "_ansible_check_mode": True}))
    r = run([MODULES / "__bin__" / f"{module}_x86_64", args])
    msg = json.loads(r.stdout)["msg"]
    m = re.search(r"\(supported: ([^)]*)\)", msg)
    assert m, msg
    return {s.strip() for s in m.group(1).split(",")}


def supplied_by_plugin(module: str) -> set[str]:
    """Arguments the action plugin fills in itself (the plan module's inventory, say)."""
    text = (ROOT / "plugins" / "action" / f"{module}.py").read_text()
    return set(re.findall(r'args\["(\w+)"\] =', text))


@pytest.mark.parametrize("module", ["plan", "apply", "verify"])
def test_documented_options_are_the_binarys(module, tmp_path):
    """Every option the binary accepts is documented, unless the action plugin supplies it."""
    accepted = accepted_by_binary(module, tmp_path)
    assert set(documented(module)) <= accepted
    assert accepted - set(documented(module)) == supplied_by_plugin(module) - set(documented(module))


def test_action_only_module_documents_its_valid_args():
    text = (ROOT / "plugins" / "action" / "entra_refresh.py").read_text()
    valid = set(re.findall(r'"(\w+)"', re.search(r"_VALID_ARGS = frozenset\(\((.*?)\)\)", text, re.S).group(1)))
    assert set(documented("entra_refresh")) == valid


def test_the_entra_state_dir_has_one_value_everywhere():
    """The Rust feed owns the default; docs, role defaults and the action plugin repeat it."""
    rust = (ROOT / "rust" / "crates" / "entra" / "src" / "config.rs").read_text()
    want = re.search(r'pub const DEFAULT_STATE_DIR: &str = "([^"]+)"', rust).group(1)
    assert documented("apply")["entra_state_dir"]["default"] == want
    assert documented("entra_refresh")["state_dir"]["default"] == want
    defaults = yaml.safe_load((ROOT / "roles" / "entra_egress" / "defaults" / "main.yml").read_text())
    assert defaults["entra_egress_state_dir"] == want
    specs = yaml.safe_load((ROOT / "roles" / "entra_egress" / "meta" / "argument_specs.yml").read_text())
    assert specs["argument_specs"]["main"]["options"]["entra_egress_state_dir"]["default"] == want
    assert f'"{want}"' in (ROOT / "plugins" / "action" / "entra_refresh.py").read_text()
    assert not re.search(r"/var/lib/vorstream-firewall/entra", (ROOT / "rust" / "crates" / "host" / "src" / "lib.rs").read_text())
