"""The plan module's `report` option (what the verify role's `verify_report` writes): the same
page as `vorfw report`, with the probe results given, rendered on the controller."""
from __future__ import annotations

import json

from helpers import ROOT, run

MULTI = ROOT / "examples" / "multi-tier.yml"
VERIFY = ROOT / "tests" / "fixtures" / "report" / "verify-multi-tier.json"


def test_the_plan_module_renders_the_report_with_probe_results(vorfw, tmp_path):
    out = tmp_path / "report.html"
    pb = tmp_path / "report.yml"
    pb.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - vorstream.firewall.plan:\n        report: true\n"
        f"        verify_results: {json.dumps(json.loads(VERIFY.read_text()))}\n"
        "      run_once: true\n      delegate_to: localhost\n      register: fw\n"
        "    - ansible.builtin.copy:\n        content: \"{{ fw.report_html }}\"\n"
        f"        dest: {out}\n      run_once: true\n      delegate_to: localhost\n"
    )
    r = run(["ansible-playbook", "-i", MULTI, pb])
    assert r.returncode == 0, r.stdout + r.stderr
    cli = run([vorfw, "report", "-i", MULTI, "--verify", VERIFY, "-o", "-"], check=True).stdout
    assert out.read_text() == cli
