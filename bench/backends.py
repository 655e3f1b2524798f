#!/usr/bin/env python
"""Backends at their limits: a 10,000-peer set (BENCH_PEERS) on one lab host of each backend.

The inventory is the lab's three target hosts (firewalld: Debian's; nftables; ufw) plus
BENCH_PEERS scattered peer addresses that never merge into a wider CIDR, every one a Consul
client, so each target admits Serf LAN from every peer: one set of 10,000 entries per family.
Per backend, through `playbooks/site.yml` limited to the target (peers from the whole
inventory), side by side with a bare ping play on the same inventory and host:
  - first apply, re-run, a one-peer change (one more host in the inventory), re-run;
  - what the host then holds: firewalld's ipset entries and `maxelem` (sized to the set, never
    the 65,536 default by omission), nftables' interval-set elements, ufw's rules;
  - ufw holds one rule per peer, port and protocol: at BENCH_PEERS the plan is above ufw's
    ceiling and must be refused with a message naming the host, the rule count and the backends
    that scale; ufw is measured at BENCH_UFW_PEERS (3,000: 9,001 rules, below the ceiling).
BENCH_BACKENDS (comma-separated) runs some of them only.
Only the lab hosts receive anything; peers are addresses in the plan only (never contacted).
"""
from __future__ import annotations

import functools
import ipaddress
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labbench import ENV, LAB, LAB_INV, ROOT, lab_lines

print = functools.partial(print, flush=True)  # noqa: A001

PEERS = int(os.environ.get("BENCH_PEERS", "10000"))
UFW_PEERS = int(os.environ.get("BENCH_UFW_PEERS", "3000"))  # 3 rules a peer: 9,001 rules
ONLY = set(os.environ.get("BENCH_BACKENDS", "firewalld,nftables,ufw").split(","))
# firewalld's set then grows past its maxelem (65,536 for 10,000 entries): resized, not full.
GROW_PEERS = int(os.environ.get("BENCH_GROW_PEERS", "70000"))
PEER_BASE = ipaddress.IPv4Address("10.232.0.0")  # plan-only addresses, never contacted
SITE = ROOT / "playbooks" / "site.yml"
NO_ENTRA = ("-e", "entra_egress_enabled=false")
PING = "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"


def targets() -> dict[str, tuple[str, str]]:
    """backend -> (host, address): Debian's firewalld (no lab_firewalld release), nftables, ufw."""
    out = {}
    for line in lab_lines():
        name, addr = line.split()[0], re.search(r"ansible_host=(\S+)", line).group(1)
        backend = re.search(r"lab_backend=(\w+)", line).group(1)
        if backend == "firewalld" and "lab_firewalld=" in line:
            continue
        out.setdefault(backend, (name, addr))
    return out


def inventory(hosts: dict[str, tuple[str, str]], peers: int) -> str:
    head = LAB_INV.read_text().split("[lab]")[0]  # connection settings
    out = [head, "[consul]"]
    out += [f"{h} ansible_host={a} host_firewall_backend={b}" for b, (h, a) in hosts.items()]
    out.append("\n[compute]")
    # Every other address: no two peers merge into one CIDR, as in a fleet whose addresses
    # are scattered.
    out += [f"peer{i:06d} ansible_host={PEER_BASE + 2 * i + 1}" for i in range(peers)]
    out += ["", "[all:vars]", "host_firewall_management_sources='[\"10.231.0.1/32\"]'", ""]
    return "\n".join(out)


def run_play(*args) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(["ansible-playbook", *map(str, args)], env=ENV, capture_output=True, text=True, check=False)
    return time.perf_counter() - t, r


def play(*args) -> float:
    dt, r = run_play(*args)
    if r.returncode != 0:
        sys.exit(f"ansible-playbook {' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return dt


def on(host, cmd) -> str:
    return subprocess.run([str(LAB), "exec", host, "sh", "-c", cmd], capture_output=True, text=True, check=True).stdout


def holds(backend: str, host: str) -> str:
    if backend == "firewalld":
        out = []
        for name in on(host, "firewall-cmd --get-ipsets").split():
            if name.startswith("vorfw-"):
                info = on(host, f"firewall-cmd --info-ipset={name}")
                n = len(re.search(r"entries:(.*)", info).group(1).split())
                m = re.search(r"maxelem=(\d+)", info)
                if n > 100:
                    out.append(f"ipset {name}: {n} entries, maxelem {m.group(1) if m else 'default (65536)'}")
        return "; ".join(out)
    if backend == "nftables":
        text = on(host, "nft list table inet vorstream")
        sets = re.findall(r"set (\S+) \{(.*?)\n\t\}", text, re.S)
        return "; ".join(f"set {n}: {body.count(',') + 1} elements" for n, body in sets if body.count(",") > 100)
    return f"{on(host, 'ufw status | grep -c vorfw: || true').strip()} ufw rules"


def measure(backend: str, host: str, peers: int, d: Path) -> None:
    inv, inv1 = d / f"{backend}.ini", d / f"{backend}-plus1.ini"
    hosts = {backend: targets()[backend]}
    inv.write_text(inventory(hosts, peers))
    inv1.write_text(inventory(hosts, peers + 1))
    (d / "ping.yml").write_text(PING)
    ping = play("-i", inv, d / "ping.yml", "-l", host)
    first = play("-i", inv, SITE, "-l", host, *NO_ENTRA)
    rerun = play("-i", inv, SITE, "-l", host, *NO_ENTRA)
    change = play("-i", inv1, SITE, "-l", host, *NO_ENTRA)
    rerun1 = play("-i", inv1, SITE, "-l", host, *NO_ENTRA)
    print(f"  {backend:<9} {host:<9} {peers:>6} peers: ping play {ping:5.1f} s | site.yml first {first:5.1f} s, "
          f"re-run {rerun:5.1f} s, one peer more {change:5.1f} s, re-run {rerun1:5.1f} s | {holds(backend, host)}")


def main() -> int:
    hosts = targets()
    missing = {"firewalld", "nftables", "ufw"} - set(hosts)
    if missing:
        sys.exit(f"the lab has no {', '.join(sorted(missing))} host")
    subprocess.run([LAB, "up", "--fresh"], check=True, capture_output=True)
    print("backends at their limits (times: the whole play, planning every inventory host included):")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for backend in ("firewalld", "nftables"):
            if backend in ONLY:
                measure(backend, hosts[backend][0], PEERS, d)
        host = hosts["firewalld"][0]
        if GROW_PEERS > PEERS and "firewalld" in ONLY:
            inv = d / "firewalld-grow.ini"
            inv.write_text(inventory({"firewalld": hosts["firewalld"]}, GROW_PEERS))
            grow = play("-i", inv, SITE, "-l", host, *NO_ENTRA)
            print(f"  firewalld {host:<9} {GROW_PEERS:>6} peers (the set outgrows its maxelem): site.yml "
                  f"{grow:5.1f} s | {holds('firewalld', host)}")
        # ufw: one rule per peer, port and protocol: measured below its ceiling, then a plan
        # above it is refused and the host keeps what it had.
        if "ufw" not in ONLY:
            return 0
        host = hosts["ufw"][0]
        measure("ufw", host, UFW_PEERS, d)
        before = on(host, "ufw status | grep -c vorfw: || true").strip()
        inv = d / "ufw-big.ini"
        inv.write_text(inventory({"ufw": hosts["ufw"]}, PEERS))
        dt, r = run_play("-i", inv, SITE, "-l", host, *NO_ENTRA)
        msg = re.search(r"fatal: \[" + re.escape(host) + r"\]: FAILED! => .*?\"msg\": \"([^\"]*)\"", r.stdout, re.S)
        refused = r.returncode != 0 and msg and "ceiling" in msg.group(1)
        print(f"  ufw       {host:<9} {PEERS:>6} peers: {'refused' if refused else 'NOT REFUSED'} in {dt:.1f} s: "
              f"{msg.group(1) if msg else r.stdout[-1500:]}")
        after = on(host, "ufw status | grep -c vorfw: || true").strip()
        print(f"            the host held {before} vorfw rules before the refusal and {after} after"
              f" ({'unchanged' if before == after else 'CHANGED'})")
        refused = refused and before == after
    return 0 if refused else 1


if __name__ == "__main__":
    sys.exit(main())
