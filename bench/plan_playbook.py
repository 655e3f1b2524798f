#!/usr/bin/env python
"""The path operators take: the `plan` task of the host_firewall role inside ansible-playbook.

For generated inventories of 1,000, 3,000 and 10,000 hosts (BENCH_PLAYBOOK_HOSTS), side by side
in one run:
  - `ansible-inventory --list` of the inventory (what reading it costs Ansible);
  - a bare play (one `debug` task, run once) limited to 12 hosts with --limit;
  - the same play running the role's `plan` task instead (registered, as the role does):
    peers come from the whole inventory, plans are returned for the 12 play hosts.
    The plan task's cost is the difference to the bare play;
  - without --limit (1,000 and 3,000 hosts): every host's plan registered;
  - `vorfw plan --format json|flows|markdown` of the same inventory: time, peak RSS, bytes
    (read from a pipe and counted, not stored: flows and markdown list hosts x peers lines, some
    40 GB of flows at 10,000 hosts; BENCH_LISTING_MAX_HOSTS, if set, skips them above that size).
Peak RSS is the largest process of the run (ansible-playbook or a worker), from wait4.
The three compared steps (ansible-inventory, the bare play, the plan play) are each run
BENCH_REPEAT times (3) and their best time kept, so that a moment of other load on the machine
does not decide the ratio (the RSS shown is the largest of the runs).
Targets: at 10,000 hosts the plan task costs less than one `ansible-inventory --list`; the
registered result is under 25 MB; its size and the controller's RSS grow linearly; flows streams
host by host: its peak RSS at every size stays below that of `--format json`, which holds the
whole (linear) plan.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plan import ENV, ROOT, VORFW, inventory, measured

print = functools.partial(print, flush=True)  # noqa: A001  (progress as it is measured)

SIZES = [int(x) for x in os.environ.get("BENCH_PLAYBOOK_HOSTS", "1000,3000,10000").split(",") if x]
UNLIMITED = {1000, 3000}
# flows and markdown list every host's every flow (hosts x peers lines): up to this size only.
LISTING_MAX = int(os.environ.get("BENCH_LISTING_MAX_HOSTS", "10000"))
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "3")))
ENV = dict(ENV, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"), ANSIBLE_NOCOLOR="1")

PLAY = """- hosts: all
  gather_facts: false
  tasks:
{task}
"""
BARE = """    - name: Nothing
      ansible.builtin.debug:
        msg: bare
      run_once: true
      delegate_to: localhost
"""
# The role's own task (roles/host_firewall/tasks/main.yml), registered under the same name.
PLAN = """    - name: Plan every host's firewall from the inventory and the port matrix
      vorstream.firewall.plan:
      run_once: true
      delegate_to: localhost
      become: false
      check_mode: false
      register: host_firewall_plan
"""
SAVE = """    - name: Save the registered result, to measure it
      ansible.builtin.copy:
        content: "{{{{ host_firewall_plan | to_json }}}}"
        dest: "{out}"
      run_once: true
      delegate_to: localhost
"""


def run(cmd) -> tuple[float, float]:
    """Wall time and the peak RSS (MB) of the largest process of the command's tree."""
    t = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{cmd} failed ({status}): {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def counted(cmd) -> tuple[float, float, int]:
    """Wall time, peak RSS (MB, from wait4) and the bytes the command writes to its stdout,
    read from a pipe and counted (hosts x peers listings are too large to keep)."""
    t = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], env=ENV, stdout=subprocess.PIPE, bufsize=0)
    buf, total = memoryview(bytearray(1 << 20)), 0
    while n := p.stdout.readinto(buf):
        total += n
    _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{cmd} failed ({status})")
    return wall, usage.ru_maxrss / 1024, total


def best(measure, *args):
    """The best time of REPEAT runs of measure(*args), with the rest of the last run's result
    and the largest RSS of all runs (measure returns time, RSS, ...)."""
    runs = [measure(*args) for _i in range(REPEAT)]
    return (min(r[0] for r in runs), max(r[1] for r in runs), *runs[-1][2:])


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        bare, plan = d / "bare.yml", d / "plan.yml"
        bare.write_text(PLAY.format(task=BARE))
        plan.write_text(PLAY.format(task=PLAN))
        saving = d / "save.yml"
        saving.write_text(PLAY.format(task=PLAN + SAVE.format(out=d / "result.json")))
        print(f"{'hosts':>6} {'step':44} {'time':>9} {'peak RSS':>9} {'bytes':>10}")
        for n in SIZES:
            ini = d / f"inv{n}.ini"
            ini.write_text(inventory(n))
            hosts = [l.split()[0] for l in ini.read_text().splitlines() if " ansible_host=" in l]
            limit = ":".join(hosts[:12])
            js = d / f"inv{n}.json"
            t_ai, rss_ai, _size = best(measured, ["ansible-inventory", "-i", ini, "--list"], js)
            t_bare, rss_bare = best(run, ["ansible-playbook", "-i", ini, bare, "-l", limit])
            t_plan, rss_plan = best(run, ["ansible-playbook", "-i", ini, plan, "-l", limit])
            run(["ansible-playbook", "-i", ini, saving, "-l", limit])
            size = (d / "result.json").stat().st_size
            cost = t_plan - t_bare
            print(f"{n:6d} {'ansible-inventory --list':44} {t_ai:8.2f}s {rss_ai:7.0f}MB")
            print(f"{n:6d} {'bare play, --limit 12 hosts':44} {t_bare:8.2f}s {rss_bare:7.0f}MB")
            print(f"{n:6d} {'plan task play, --limit 12 hosts':44} {t_plan:8.2f}s {rss_plan:7.0f}MB {size:10d}")
            print(f"{n:6d} {'  plan task cost / ansible-inventory --list':44} {cost / t_ai:8.2f}x")
            if n == max(SIZES):
                ok &= cost < t_ai and size < 25e6
            if n in UNLIMITED:
                t_all, rss_all = run(["ansible-playbook", "-i", ini, plan])
                run(["ansible-playbook", "-i", ini, saving])
                size_all = (d / "result.json").stat().st_size
                print(f"{n:6d} {'plan task play, every host (no --limit)':44} {t_all:8.2f}s {rss_all:7.0f}MB {size_all:10d}")
                print(f"{n:6d} {'  plan task cost / ansible-inventory --list':44} {(t_all - t_bare) / t_ai:8.2f}x")
            peak = {}
            for fmt in ("json", "flows", "markdown") if n <= LISTING_MAX else ("json",):
                t, peak[fmt], b = counted([VORFW, "plan", "--inventory", js, "--format", fmt])
                print(f"{n:6d} {'vorfw plan --format ' + fmt:44} {t:8.2f}s {peak[fmt]:7.0f}MB {b:11d}")
            if "flows" in peak:
                streams = peak["flows"] < peak["json"]
                print(f"{n:6d}   flows streams (peak RSS below json's): {'met' if streams else 'MISSED'}")
                ok &= streams
        print(f"target: at {max(SIZES)} hosts the plan task costs less than ansible-inventory --list, "
              f"its registered result under 25 MB; flows streams at every size: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
