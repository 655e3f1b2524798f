#!/usr/bin/env python3
"""Planning benchmark: 10,000 hosts spread over VOR Stream's groups.

Measured side by side in one run, each the median of several runs:
  - `ansible-inventory --list` on the inventory (what any Ansible run pays to read it),
  - `vorfw plan --inventory inv.json --format summary` (planning every host from that JSON),
  - `vorfw plan -i inv.ini --format summary` (end to end: runs ansible-inventory itself).
Prints absolute times and the ratio of planning to reading the inventory with Ansible.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VORFW = ROOT / "bin" / "vorfw"
ENV = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
N = int(os.environ.get("BENCH_HOSTS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))

# How many hosts each group gets; compute takes the rest. SDK overlaps compute.
FIXED = {"consul": 5, "super": 2, "django": 2, "web": 2, "rabbitmq": 3, "vault": 3, "postgres": 2}


def inventory(n: int) -> str:
    lines, i = [], 0
    addr = lambda i: f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}"
    groups: dict[str, list[str]] = {g: [] for g in FIXED}
    groups["compute"] = []
    for g, k in FIXED.items():
        for _ in range(k):
            groups[g].append(f"{g}{i} ansible_host={addr(i)}")
            i += 1
    while i < n:
        groups["compute"].append(f"compute{i} ansible_host={addr(i)}")
        i += 1
    for g, hs in groups.items():
        lines.append(f"[{g}]")
        lines.extend(hs)
    lines.append("[consul_ui]")
    lines.append(groups["consul"][0].split()[0])
    lines.append("[sdk]")
    lines.extend(h.split()[0] for h in groups["compute"][: n // 20])
    lines.append("[all:vars]")
    lines.append("host_firewall_admin_sources='[\"192.0.2.0/24\"]'")
    lines.append("host_firewall_management_sources='[\"192.0.2.10/32\"]'")
    return "\n".join(lines) + "\n"


def timed(cmd, runs=RUNS, stdout=subprocess.DEVNULL):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=ENV, stdout=stdout)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        ini = Path(d) / "inv.ini"
        ini.write_text(inventory(N))
        js = Path(d) / "inv.json"
        with js.open("w") as f:
            subprocess.run(["ansible-inventory", "-i", ini, "--list"], check=True, env=ENV, stdout=f)
        out = subprocess.run([VORFW, "plan", "--inventory", js, "--format", "summary"], check=True, env=ENV,
                             capture_output=True, text=True).stdout
        print(f"inventory: {N} hosts; {out.strip().splitlines()[-1].lstrip('# ')}")
        t_ai = timed(["ansible-inventory", "-i", ini, "--list"], runs=max(1, RUNS // 2))
        t_plan = timed([VORFW, "plan", "--inventory", js, "--format", "summary"])
        t_e2e = timed([VORFW, "plan", "-i", ini, "--format", "summary"], runs=max(1, RUNS // 2))
        print(f"ansible-inventory --list           {t_ai * 1000:8.0f} ms")
        print(f"vorfw plan (from inventory JSON)   {t_plan * 1000:8.0f} ms")
        print(f"vorfw plan -i (end to end)         {t_e2e * 1000:8.0f} ms")
        print(f"ratio planning / ansible-inventory {t_plan / t_ai:8.2f}x")
        ok = t_plan < 1.0
        print(f"target: plan {N} hosts well under 1 s: {'met' if ok else 'MISSED'} ({t_plan * 1000:.0f} ms)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
