"""`vorfw report`: the sign-off page of the example inventory, against golden files
(tests/golden/report; regenerate with `VORFW_UPDATE_GOLDEN=1 make test-cli` and review the diff),
and its inputs: probe results and an older plan."""
from __future__ import annotations

import json
import os
import re

from helpers import ROOT, run

GOLDEN = ROOT / "tests" / "golden" / "report"
MULTI = ROOT / "examples" / "multi-tier.yml"
VERIFY = ROOT / "tests" / "fixtures" / "report" / "verify-multi-tier.json"


def old_plan(vorfw, tmp_path):
    """The multi-tier plan before Vault reached RabbitMQ: the change adds Vault's rules."""
    r = run([vorfw, "plan", "-i", MULTI, "-e", '{"host_firewall_vault_dynamic_secrets": ["postgres"]}',
             "--format", "json"], check=True)
    p = tmp_path / "old.json"
    p.write_text(r.stdout)
    return p


def check_golden(name: str, text: str):
    golden = GOLDEN / name
    if os.environ.get("VORFW_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"{golden} is missing: run with VORFW_UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text(), f"the report differs from {golden}"


def test_report_matches_the_golden_file(vorfw, tmp_path):
    out = tmp_path / "report.html"
    r = run([vorfw, "report", "-i", MULTI, "-o", out])
    assert r.returncode == 0 and r.stdout == "", r.stderr
    check_golden("multi-tier.html", out.read_text())


def test_report_with_probe_results_and_changes_matches_the_golden_file(vorfw, tmp_path):
    r = run([vorfw, "report", "-i", MULTI, "--verify", VERIFY, "--against", old_plan(vorfw, tmp_path), "-o", "-"],
            check=True)
    page = r.stdout
    check_golden("multi-tier-verify-against.html", page)
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page).group(1))
    assert data["verify"] == {"required_open": 3, "forbidden_blocked": 2, "mismatches": 2}
    assert data["changes"]["added"] > 0 and data["changes"]["removed"] == 0
    # Mismatches come first: their table precedes the matrix, and compute1 (the source with
    # mismatches) heads the matrix's rows.
    assert page.index('id="mismatches"') < page.index('id="verify-matrix"')
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>', page)
    assert rows == ["compute1", "web1"]
    assert "rabbitmq" in page[page.index('id="changes-table"'):]


def test_report_inputs_are_checked(vorfw, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"web1": [{"dst": "nope"}]}')
    r = run([vorfw, "report", "-i", MULTI, "--verify", bad, "-o", tmp_path / "r.html"])
    assert r.returncode == 1 and "verify results of host web1: not a list of probe results" in r.stderr
    r = run([vorfw, "report", "-i", MULTI, "--against", VERIFY, "-o", tmp_path / "r.html"])
    assert r.returncode == 1 and "not a plan of `vorfw plan --format json`" in r.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_needs_no_network(vorfw):
    page = run([vorfw, "report", "-i", MULTI, "-o", "-"], check=True).stdout
    assert "default-src 'none'" in page
    assert not re.search(r'\b(src|href)="(https?:)?//', page), "the page loads nothing"
