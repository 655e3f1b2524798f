"""The replay harness (tests/replay/entra_replay.py) over the real files in the repository and
the synthetic sequences built from them: every figure the update policy promises, per sequence,
through the built `vorfw entra`. Also two controls proving the figures can fail."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

HARNESS = ROOT / "tests" / "replay" / "entra_replay.py"


def run_json(vorfw, *args):
    cmd = [sys.executable, str(HARNESS), "scenarios", "--json", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, VORFW=str(vorfw)), check=False)
    assert r.stdout, r.stderr
    return r.returncode, {x["name"]: x for x in json.loads(r.stdout)}


@pytest.fixture(scope="module")
def results(vorfw):
    return run_json(vorfw)


MUST_BE_ZERO = ("unexpected", "missing", "overdue", "admitted", "altered")
# (sequence, refusals expected, at least this many refreshes ending with removals held)
EXPECT = [
    ("real-public", 0, 0),
    ("real-azuregovernment", 0, 0),
    ("real-china", 0, 0),
    ("china-26pct-removal", 0, 1),
    ("eleven-week-gap", 0, 1),
    ("backwards-change-number", 0, 1),
    ("removal-restored", 0, 1),
    ("hostile-default-route", 1, 0),
    ("change-number-max", 1, 0),
    ("huge-900k", 1, 0),
]


def test_every_sequence_ran(results):
    rc, res = results
    assert sorted(res) == sorted(n for n, _refusals, _held in EXPECT)
    assert rc == 0, {n: r["notes"] for n, r in res.items() if not r["ok"]}


@pytest.mark.parametrize("name,refused,held", EXPECT)
def test_sequence_figures(results, name, refused, held):
    r = results[1][name]
    assert r["steps"] > 0 and r["accepted"] + r["refused"] == r["steps"], r
    for k in MUST_BE_ZERO:
        assert r[k] == 0, (k, r["notes"])
    assert r["refused"] == refused, r["notes"]
    assert r["held"] >= held, r
    if name == "china-26pct-removal":
        # The held removal took effect: nothing stays much longer than 4 weekly files.
        assert r["max_days"] <= 35, r
        assert r["steps"] >= 50


def test_the_figures_can_fail(vorfw):
    # Without the plausibility limits the hostile file is admitted ...
    rc, res = run_json(vorfw, "--only", "hostile-default-route", "--", "--allow-special-use",
                       "--widest-ipv4", "0", "--widest-ipv6", "0")
    assert rc == 1 and res["hostile-default-route"]["admitted"] >= 2, res
    # ... and refusing additions leaves recent prefixes out (the freeze the policy prevents).
    rc, res = run_json(vorfw, "--only", "china-26pct-removal", "--", "--max-additions", "0")
    r = res["china-26pct-removal"]
    assert rc == 1 and r["unexpected"] > 0 and r["missing"] > 0, r


def test_real_files_mode_reads_a_directory(vorfw):
    d = ROOT / "tests" / "fixtures" / "servicetags" / "microsoft"
    r = subprocess.run([sys.executable, str(HARNESS), "files", str(d), "--json"], capture_output=True, text=True,
                       env=dict(os.environ, VORFW=str(vorfw)), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    res = {x["name"]: x for x in json.loads(r.stdout)}
    assert res["files-public"]["steps"] == 5 and res["files-public"]["accepted"] == 5
    assert res["files-china"]["steps"] == 1 and res["files-azuregovernment"]["steps"] == 1
