"""Sign-off reports cannot be spoofed by what an inventory holds: the findings of the hostile-input
review, each reproduced (they fooled the reports before) and shown fixed."""
from __future__ import annotations

import json
import re

from helpers import run


def inventory(tmp_path, hosts: dict, web_vars: dict | None = None):
    doc = {"_meta": {"hostvars": hosts}, "web": {"hosts": list(hosts)}}
    if web_vars:
        for h in hosts:
            hosts[h].update(web_vars)
    p = tmp_path / "inv.json"
    p.write_text(json.dumps(doc))
    return p


def test_purposes_cannot_hide_rows_in_markdown(vorfw, tmp_path):
    # Two purposes that once opened and closed an HTML comment around the rows between them.
    rules = [
        {"id": "ftp", "group": "web", "port": 2121, "sources": ["10.0.0.0/8"], "purpose": "FTP <!--"},
        {"id": "ssh-alt", "group": "web", "port": 2222, "sources": ["0.0.0.0/0"], "purpose": "alt | ssh"},
        {"id": "zz", "group": "web", "port": 2323, "sources": ["10.0.0.0/8"], "purpose": "x -->"},
    ]
    inv = inventory(tmp_path, {"web1": {"ansible_host": "10.1.0.1", "host_firewall_extra_rules": rules}})
    md = run([vorfw, "plan", "-i", inv, "--format", "markdown"], check=True).stdout
    assert "<!--" not in md and "-->" not in md
    row = [l for l in md.splitlines() if l.startswith("| 2222 |")]
    assert len(row) == 1 and row[0].count(" | ") == 5 and "alt \\| ssh" in row[0], md


def test_formula_host_names_are_text_in_csv(vorfw, tmp_path):
    inv = inventory(tmp_path, {'=HYPERLINK("http://x","y")': {"ansible_host": "10.1.0.1"}})
    out = run([vorfw, "plan", "-i", inv, "--format", "csv"], check=True).stdout
    body = out.splitlines()[1:]
    assert body and all(l.startswith("\"'=HYPERLINK(") for l in body), out


def test_mermaid_labels_cannot_break_out_and_names_stay_distinct(vorfw, tmp_path):
    hosts = {n: {"ansible_host": f"10.1.0.{i}"} for i, n in enumerate(["web-1", "web_1", "web.1"], 1)}
    hosts['w"] \nclick w javascript:alert(1)'] = {"ansible_host": "10.1.0.9"}
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"_meta": {"hostvars": hosts}, "web": {"hosts": list(hosts)}}))
    r = run([vorfw, "plan", "-i", inv, "--format", "mermaid"])
    # A name with a newline is refused outright (it would also split flows lines).
    assert r.returncode == 1 and "holds a control character (U+000A)" in r.stderr, r.stderr
    del hosts['w"] \nclick w javascript:alert(1)']
    hosts['w"] click w'] = {"ansible_host": "10.1.0.9"}
    inv.write_text(json.dumps({"_meta": {"hostvars": hosts}, "web": {"hosts": list(hosts)}}))
    mm = run([vorfw, "plan", "-i", inv, "--format", "mermaid"], check=True).stdout
    assert not re.search(r"^\s*click", mm, re.M) and '"]' not in mm.replace('#quot;"]', "").replace('"]\n', "\n"), mm
    nodes = re.findall(r"^\s+Web__(\S+)\[", mm, re.M)
    assert len(nodes) == len(set(nodes)) == 4, mm


def test_control_characters_are_refused_at_plan_time(vorfw, tmp_path):
    rules = [{"id": "x", "group": "web", "port": 2121, "sources": ["10.0.0.0/8"], "purpose": "a\tb"}]
    inv = inventory(tmp_path, {"web1": {"ansible_host": "10.1.0.1", "host_firewall_extra_rules": rules}})
    r = run([vorfw, "plan", "-i", inv])
    assert r.returncode == 1 and r.stdout == ""
    assert "host web1: host_firewall_extra_rules[0] (id x): purpose 'a\\tb' holds a control character (U+0009)" in r.stderr, r.stderr
    inv = inventory(tmp_path, {"web\t1": {"ansible_host": "10.1.0.1"}})
    r = run([vorfw, "plan", "-i", inv])
    assert r.returncode == 1 and "host name 'web\\t1' holds a control character (U+0009)" in r.stderr, r.stderr
