"""The plan module's result grows linearly with the fleet (each peer set written once), on the
path the role takes: the module inside ansible-playbook, its result registered. Not timed:
speed is measured by bench/plan_playbook.py."""
from __future__ import annotations

import json
import sys

from helpers import ROOT, registered_plan

sys.path.insert(0, str(ROOT / "bench"))
from plan import inventory  # noqa: E402  (the benchmark's generated fleet)


def registered(tmp_path, n: int) -> dict:
    ini = tmp_path / f"inv{n}.ini"
    ini.write_text(inventory(n))
    r, out = registered_plan(tmp_path, ini)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return {"bytes": out.stat().st_size, "result": json.loads(out.read_text())}


def test_the_registered_plan_of_3000_hosts_is_at_most_3_5_times_that_of_1000(tmp_path):
    small, large = registered(tmp_path, 1000), registered(tmp_path, 3000)
    # Every host's plan came back (no --limit), so the size is the whole fleet's.
    assert (small["result"]["host_count"], len(small["result"]["plans"])) == (1000, 1000)
    assert (large["result"]["host_count"], len(large["result"]["plans"])) == (3000, 3000)
    ratio = large["bytes"] / small["bytes"]
    assert ratio <= 3.5, (small["bytes"], large["bytes"], ratio)
    # Each set once: the compute hosts' set of 3,000 members is in the table, not in each plan.
    assert large["bytes"] < 20e6, large["bytes"]
