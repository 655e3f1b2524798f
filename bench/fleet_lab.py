#!/usr/bin/env python
"""A 100-host lab (BENCH_FLEET_HOSTS): the playbooks operators run, beside a bare ping play.

The lab's host table is generated (tests/lab/lab.sh takes it as LAB_HOSTS_FILE, with its own
state directory and inventory): every VOR Stream group, most hosts plain nftables (no daemon,
so they are light), plus firewalld (Debian's) and ufw hosts. Measured side by side in one run:
  - `lab.sh up` (first, then again: idempotent, nothing rebuilt) and `lab.sh down` (twice; then
    nothing of it is left: no namespace, no process, no bridge);
  - an `ansible.builtin.ping` play on every host (what any play costs on this fleet);
  - `site.yml`: first converge, and the re-run (no change on any host);
  - `verify.yml`: `verify_coverage=full` and `covering`, with their probe counts (and, for
    comparison, the same on the 12-host lab's inventory sizes, computed by the plan module).
Targets: re-run within 3x the ping play, first converge within 5x.
The 12-host lab is measured the same way first (probe counts of both sizes); the two labs
share the bridge, so each goes down before the other comes up.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labbench import ENV, LAB, ROOT

print = functools.partial(print, flush=True)  # noqa: A001  (progress as it is measured)

N = int(os.environ.get("BENCH_FLEET_HOSTS", "100"))
STATE = Path(os.environ.get("BENCH_FLEET_STATE", "/var/lib/vorlab-fleet"))
DEMO = ROOT / "tests" / "lab" / "demo.yml"
MATRIX = json.loads((ROOT / "data" / "port_matrix.json").read_text())
FORKS = os.environ.get("BENCH_FLEET_FORKS", "24")
# Two hosts of every group but compute (consul: three, the first also consul_ui); compute
# takes the rest. Backends: one firewalld host in most groups and a few compute hosts, ufw on
# an SDK host and some compute hosts, nftables everywhere else.
FIREWALLD = {"consul-1", "super-1", "django-1", "web-1", "rabbitmq-1", "postgres-1", "compute-1", "compute-2"}
UFW = {"sdk-1", "compute-3", "compute-4", "compute-5"}


def groups() -> list[str]:
    """The inventory groups of the matrix's services ("all" is every host's Consul client;
    sqlserver is an external database, never a lab host)."""
    return sorted({s["group"] for s in MATRIX["services"]} - {"all", "sqlserver"})


def table(n: int) -> str:
    rows, octet = [], 10
    names: list[tuple[str, str]] = []
    for g in groups():
        if g in ("compute", "consul_ui"):
            continue
        for i in range(1, (3 if g == "consul" else 2) + 1):
            names.append((f"{g}-{i}", g + (",consul_ui" if g == "consul" and i == 1 else "")))
    names += [(f"compute-{i}", "compute") for i in range(1, n - len(names) + 1)]
    if len(names) != n or n > 240:
        sys.exit(f"BENCH_FLEET_HOSTS={n}: between {len(names)} and 240 hosts")
    for name, gs in names:
        short = name.replace("rabbitmq", "rabbit").replace("postgres", "pg").replace("consul_ui", "cui")
        backend = "firewalld" if name in FIREWALLD else "ufw" if name in UFW else "nftables"
        rows.append(f"{short:<12} {octet:<3} {gs:<18} {backend}")
        octet += 1
    return "\n".join(rows) + "\n"


def lab(*args, table_file: Path | None) -> float:
    """tests/lab/lab.sh: the fleet's (its table and state directory), or the 12-host lab's."""
    env = dict(ENV, VORLAB_STATE=str(STATE), LAB_HOSTS_FILE=str(table_file)) if table_file else dict(ENV)
    t = time.perf_counter()
    r = subprocess.run([str(LAB), *args], env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"lab.sh {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def play(inventory: Path, *args, env: dict | None = None) -> tuple[float, str]:
    env = dict(ENV, ANSIBLE_FORKS=FORKS, ANSIBLE_HOST_KEY_CHECKING="False", **(env or {}))
    t = time.perf_counter()
    r = subprocess.run(["ansible-playbook", "-i", str(inventory), "-i", str(DEMO), *map(str, args)],
                       env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        # The failures themselves (a fleet's recap alone is longer than any tail).
        bad = [l for l in r.stdout.splitlines() if l.startswith(("fatal:", "failed:")) or
               re.search(r"(failed|unreachable)=[1-9]", l)]
        sys.exit(f"ansible-playbook {' '.join(map(str, args))} failed:\n" + "\n".join(bad)[-6000:]
                 + f"\n{r.stderr[-2000:]}")
    return dt, r.stdout


NEIGH = [Path(f"/proc/sys/net/ipv{v}/neigh/default/gc_thresh{i}") for v in (4, 6) for i in (1, 2, 3)]


@contextlib.contextmanager
def neighbour_room(hosts: int):
    """The kernel's neighbour (ARP and NDP) tables are one for all network namespaces: a lab host
    probing every other host's IPv4 and IPv6 addresses (verify full) adds an entry per pair, 100
    hosts make ~20,000, and past gc_thresh3 (default 1024) the kernel refuses new neighbours
    ("neighbor table overflow!"): SSH from the controller then fails with "No route to host".
    Separate machines each have their own table, so the fleet's lab gets room for hosts² per
    family, and the defaults back afterwards."""
    before = {p: p.read_text().strip() for p in NEIGH}
    need = 2 * hosts * hosts
    for p in NEIGH:
        i = int(p.name[-1])
        p.write_text(str(max(int(before[p]), need >> (3 - i))))
    try:
        yield
    finally:
        for p, v in before.items():
            p.write_text(v)


def recap(out: str) -> dict[str, dict[str, int]]:
    return {m[1]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
            for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", out, re.M)}


def leftovers() -> list[str]:
    left = []
    if subprocess.run(["ip", "link", "show", "vorlab0"], capture_output=True, check=False).returncode == 0:
        left.append("bridge vorlab0")
    netns = Path("/run/netns")
    left += [f"netns {p.name}" for p in (netns.iterdir() if netns.is_dir() else []) if p.name.startswith("vl-") or p.name == "vorlab-dns"]
    r = subprocess.run(["grep", "-lzF", f"_VORLAB_DAEMON={STATE}|", *map(str, Path("/proc").glob("[0-9]*/environ"))],
                       capture_output=True, text=True, check=False)
    left += [f"process {p.split('/')[2]}" for p in r.stdout.split()]
    return left


def plays(label: str, inventory: Path, hosts: int, tmp: Path) -> None:
    """ping, site.yml first converge and re-run, verify covering and full, on one lab."""
    pb = tmp / "ping.yml"
    pb.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    ping = play(inventory, pb)[0]
    print(f"  {label}: ansible.builtin.ping play: {ping:.1f} s")
    # Commit-confirm (tests/lab/demo.yml: 120 s) reaches each host again over a new connection;
    # with 24 hosts converging at once on 2 cores that took up to 88 s, so the fleet gets what the
    # role's warning advises for a busier run: a longer host_firewall_confirm_timeout.
    confirm = ("-e", "host_firewall_confirm_timeout=600") if hosts > 12 else ()
    first, out = play(inventory, ROOT / "playbooks" / "site.yml", *confirm)
    rc = recap(out)
    assert len(rc) == hosts and all(v["failed"] == 0 and v["unreachable"] == 0 for v in rc.values()), out[-3000:]
    print(f"  {label}: site.yml first converge: {first:.1f} s = {first / ping:.1f}x ping (target 5x)")
    again, out = play(inventory, ROOT / "playbooks" / "site.yml", *confirm)
    changed = sorted(h for h, v in recap(out).items() if v["changed"])
    print(f"  {label}: site.yml re-run: {again:.1f} s = {again / ping:.1f}x ping (target 3x); "
          f"hosts changed: {len(changed)}{' ' + ', '.join(changed) if changed else ''}")
    for cov in ("covering", "full"):
        # Full coverage at 100 hosts is hosts² × ports probes (316,800), most of them waiting out
        # the probe timeout on a dropped SYN; with 24 hosts probing at once on 2 cores, new SSH
        # connections to the lab hosts can take longer than Ansible's 10 s connect timeout.
        slow = {"ANSIBLE_TIMEOUT": "120"} if cov == "full" and hosts > 12 else {}
        dt, out = play(inventory, ROOT / "playbooks" / "verify.yml", "-e", f"verify_coverage={cov}", env=slow)
        totals = re.findall(r'"msg": "(\d+) required flows open, (\d+) forbidden flows blocked, (\d+) mismatches"', out)
        req, forb, mism = (sum(int(t[i]) for t in totals) for i in range(3))
        covered = re.findall(r'What the probes covered\].*?"msg": "([^"]*)"', out, re.S)
        print(f"  {label}: verify ({cov}): {dt:.1f} s = {dt / ping:.1f}x ping; {req + forb} probes "
              f"({req} required open, {forb} forbidden blocked), {mism} mismatches"
              + (f"; {covered[-1]}" if covered else ""))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # The 12-host lab first, for comparison (its own table, tests/lab/lab.sh's), unless
        # BENCH_FLEET_ONLY=1 asks for the fleet alone.
        if not os.environ.get("BENCH_FLEET_ONLY"):
            lab("up", "--fresh", table_file=None)
            try:
                plays("12 hosts", ROOT / "tests" / "lab" / "inventory.ini", 12, tmp)
            finally:
                lab("down", table_file=None)
        tf = tmp / "hosts.table"
        tf.write_text(table(N))
        kinds = {b: sum(1 for l in tf.read_text().splitlines() if l.endswith(b)) for b in ("firewalld", "ufw", "nftables")}
        print(f"fleet lab: {N} hosts ({', '.join(f'{v} {k}' for k, v in kinds.items())}), forks {FORKS}")
        up1 = lab("up", "--fresh", table_file=tf)
        up2 = lab("up", table_file=tf)
        print(f"  lab.sh up: {up1:.1f} s first, {up2:.1f} s again (idempotent)")
        try:
            with neighbour_room(N):
                plays(f"{N} hosts", STATE / "inventory.ini", N, tmp)
        finally:
            down1 = lab("down", table_file=tf)
            down2 = lab("down", table_file=tf)
            left = leftovers()
            print(f"  lab.sh down: {down1:.1f} s, again {down2:.1f} s; left behind: {', '.join(left) or 'nothing'}")
            if left:
                sys.exit(1)


if __name__ == "__main__":
    main()
