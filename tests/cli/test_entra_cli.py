"""`vorfw entra` as an operator and the timer run it, without touching any firewall: the
recorded request of the apply module is absent (or names no OIDC client), so `apply` validates,
saves and reports, and says why nothing was applied. Synthetic lab files only."""
from __future__ import annotations

import json
import os
import subprocess

from helpers import ROOT

FIX = ROOT / "tests" / "fixtures" / "servicetags"
WEEK1 = FIX / "ServiceTags_Public_lab_week1.json"
WEEK2 = FIX / "ServiceTags_Public_lab_week2.json"


def entra(vorfw, tmp_path, *args, record=None, lab=True):
    """`vorfw entra ARGS`; the lab's files hold lab (private) addresses, which only a lab feed
    may allow (`--allow-special-use`)."""
    env = dict(os.environ, VORFW_APPLIED_RECORD=str(record or tmp_path / "applied.json"))
    args = [str(a) for a in args]
    if lab and args[0] in ("apply", "fetch", "diff"):
        args.append("--allow-special-use")
    return subprocess.run([vorfw, "entra", "--state-dir", tmp_path / "state", *args],
                          capture_output=True, text=True, env=env, check=False)


def test_a_real_feed_refuses_lab_addresses(vorfw, tmp_path):
    r = entra(vorfw, tmp_path, "apply", "--file", WEEK1, lab=False)
    assert r.returncode == 1, r.stdout
    assert "[implausible]" in r.stderr and "10.231.0.200/30 (in 10.0.0.0/8 private-use" in r.stderr, r.stderr
    assert "fd00:231::c8/126 (in fc00::/7 unique local" in r.stderr, r.stderr
    assert not (tmp_path / "state" / "state.json").exists()


def test_apply_without_a_managed_firewall_saves_the_list_and_says_so(vorfw, tmp_path):
    r = entra(vorfw, tmp_path, "apply", "--file", WEEK1, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["changed"] and doc["effective"] == ["10.231.0.200/30", "fd00:231::c8/126"]
    assert "list saved only" in doc["firewall"]["summary"] and doc["firewall"]["changed"] is False
    assert (tmp_path / "state" / "prefixes.txt").read_text().split() == doc["effective"]
    # Check mode: the next week's additions are reported, nothing is written.
    r = entra(vorfw, tmp_path, "apply", "--file", WEEK2, "--check", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["check"] and doc["diff"]["added"] == ["10.231.0.208/30"], doc
    assert doc["previous_effective"] == ["10.231.0.200/30", "fd00:231::c8/126"]
    assert "10.231.0.208/30" not in (tmp_path / "state" / "prefixes.txt").read_text()
    # Going backwards after week 2 removes a third of the list: the refresh succeeds, the removal
    # is held (the prefix stays), and status says so with exit code 3.
    assert entra(vorfw, tmp_path, "apply", "--file", WEEK2).returncode == 0
    r = entra(vorfw, tmp_path, "apply", "--file", WEEK1, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["diff"]["held"] == ["10.231.0.208/30"] and "10.231.0.208/30" in doc["effective"], doc
    assert "changeNumber 501 is lower than the applied 502" in doc["held"][0]["detail"]
    status = entra(vorfw, tmp_path, "status", "--format", "json")
    s = json.loads(status.stdout)
    assert status.returncode == 3 and s["condition"] == "held" and s["change_number"] == 501, s


def test_apply_on_a_host_that_keeps_no_entra_set(vorfw, tmp_path):
    record = tmp_path / "applied.json"
    record.write_text(json.dumps({"plan": {"name": "web1", "addresses": ["10.231.0.23"], "entra": False}}))
    r = entra(vorfw, tmp_path, "apply", "--file", WEEK1, record=record)
    assert r.returncode == 0, r.stderr
    assert "web1 keeps no Entra ID set" in r.stdout


def test_an_unreadable_record_is_an_error_that_names_it(vorfw, tmp_path):
    record = tmp_path / "applied.json"
    record.write_text("{")
    r = entra(vorfw, tmp_path, "apply", "--file", WEEK1, record=record)
    assert r.returncode == 1 and str(record) in r.stderr and "re-run the host_firewall role" in r.stderr, r.stderr
    assert not (tmp_path / "state" / "state.json").exists()
