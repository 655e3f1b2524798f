"""The collection's conventions, checked by the community's own tools on the collection as a fresh
clone has it: ansible-lint's production profile, antsibull-docs' collection docs linter (plugin
and role docs included) and antsibull-changelog (valid fragments, CHANGELOG.rst up to date)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from helpers import ROOT, VENV_BIN, clean_copy, run


def isolated(tmp_path) -> dict:
    """The copy's own tree as the only collections path and a throwaway ANSIBLE_HOME: the tools
    see only the copy, never the checkout (build/collections), and what they install (ansible-lint
    installs the collection it lints into ANSIBLE_HOME) never lands in ~/.ansible."""
    return {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "ANSIBLE_HOME": str(tmp_path / "ansible-home")}


def lint(tmp_path, *args, timeout=600):
    coll = clean_copy(tmp_path)
    return coll, run(args, cwd=coll, timeout=timeout, extra_env=isolated(tmp_path))


def test_ansible_lint_production_profile(tmp_path):
    installed = Path.home() / ".ansible" / "collections" / "ansible_collections" / "vorstream" / "firewall"
    was_there = installed.exists()
    coll, r = lint(tmp_path, VENV_BIN / "ansible-lint", "--profile", "production", "--nocolor")
    assert installed.exists() == was_there, f"ansible-lint installed the collection in {installed}"
    assert (coll / ".ansible-lint").is_file()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "Profile 'production' was required, and it passed." in out, out[-3000:]
    # It did look at the collection's Ansible content (roles, playbooks, the galaxy file).
    processed = int(re.search(r"in (\d+) files processed", out).group(1))
    assert processed >= 40, out[-3000:]


def test_antsibull_docs_lint_collection_docs(tmp_path):
    _coll, r = lint(tmp_path, VENV_BIN / "antsibull-docs", "lint-collection-docs", "--plugin-docs", ".")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout[-4000:] + r.stderr[-2000:]


def test_changelog_fragments_lint_and_the_rst_is_generated(tmp_path):
    released = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert released["0.1.0"]["changes"]["release_summary"] and released["0.1.0"]["release_date"]
    coll, r = lint(tmp_path, VENV_BIN / "antsibull-changelog", "lint")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
    r = run([VENV_BIN / "antsibull-changelog", "generate"], cwd=coll, extra_env=isolated(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (coll / "CHANGELOG.rst").read_text() == (ROOT / "CHANGELOG.rst").read_text(), (
        "CHANGELOG.rst is not what `antsibull-changelog generate` makes of changelogs/changelog.yaml")
