"""The collection's conventions, checked by the community's own tools on the collection as a fresh
clone has it: ansible-lint's production profile, antsibull-docs' collection docs linter (plugin
and role docs included) and antsibull-changelog (valid fragments, CHANGELOG.rst up to date)."""
from __future__ import annotations

import re

import yaml

from helpers import ROOT, VENV_BIN, clean_copy, run


def test_ansible_lint_production_profile(tmp_path):
    coll = clean_copy(tmp_path)
    assert (coll / ".ansible-lint").is_file()
    r = run([VENV_BIN / "ansible-lint", "--profile", "production", "--nocolor"], cwd=coll, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "Profile 'production' was required, and it passed." in out, out[-3000:]
    # It did look at the collection's Ansible content (roles, playbooks, the galaxy file).
    processed = int(re.search(r"in (\d+) files processed", out).group(1))
    assert processed >= 40, out[-3000:]


def test_antsibull_docs_lint_collection_docs(tmp_path):
    coll = clean_copy(tmp_path)
    r = run([VENV_BIN / "antsibull-docs", "lint-collection-docs", "--plugin-docs", "."], cwd=coll, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout[-4000:] + r.stderr[-2000:]


def test_changelog_fragments_lint_and_the_rst_is_generated(tmp_path):
    released = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert released["0.1.0"]["changes"]["release_summary"] and released["0.1.0"]["release_date"]
    coll = clean_copy(tmp_path)
    r = run([VENV_BIN / "antsibull-changelog", "lint"], cwd=coll)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
    r = run([VENV_BIN / "antsibull-changelog", "generate"], cwd=coll)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (coll / "CHANGELOG.rst").read_text() == (ROOT / "CHANGELOG.rst").read_text(), (
        "CHANGELOG.rst is not what `antsibull-changelog generate` makes of changelogs/changelog.yaml")
