#!/usr/bin/env python
"""Scale benchmark: a 500-host inventory (every host a Consul client, so every host admits
Serf LAN from 500 peers) applied to one ufw host and one nftables host of the lab.

Measured side by side in one run:
  - this collection's role on the ufw host and on the nftables host: first apply and re-run,
    and the rules (ufw) / set elements (nftables) created;
  - the same ufw rules applied with a loop of community.general.ufw tasks on the same ufw host
    (first apply and re-run). With BENCH_UFW_SAMPLE=N (default 200) only the first N rules are
    applied by the loop and its time is scaled to all rules (printed as such); BENCH_UFW_SAMPLE=0
    runs the whole loop.
Target: at least 10x faster than the community.general.ufw loop.
Only the two lab hosts receive anything; the other 498 hosts are addresses in the plan only.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from labbench import ENV, LAB, LAB_INV, ROOT, lab_lines, timed_playbook as play

N = int(os.environ.get("BENCH_SCALE_HOSTS", "500"))
SAMPLE = int(os.environ.get("BENCH_UFW_SAMPLE", "200"))

UFW_LOOP = """- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: One community.general.ufw task per source, port and protocol
      community.general.ufw:
        rule: allow
        direction: in
        src: "{{ item.src }}"
        port: "{{ item.port }}"
        proto: "{{ item.proto }}"
        comment: "{{ item.comment }}"
      loop: "{{ bench_rules }}"
    - name: Enable with default deny
      community.general.ufw:
        state: enabled
        default: deny
        direction: incoming
"""


def lab_hosts():
    return {l.split()[0]: (re.search(r"ansible_host=(\S+)", l).group(1), re.search(r"lab_backend=(\w+)", l).group(1)) for l in lab_lines()}


def inventory(ufw_host, ufw_addr, nft_host, nft_addr) -> str:
    head = LAB_INV.read_text().split("[lab]")[0]  # connection settings
    out = [head, "[consul]"]
    out.append(f"{ufw_host} ansible_host={ufw_addr} host_firewall_backend=ufw")
    out.append(f"{nft_host} ansible_host={nft_addr} host_firewall_backend=nftables")
    # Every other address, so no two peers merge into one CIDR: one rule per peer, as in a
    # fleet whose addresses are scattered.
    for i in range(N - 2):
        out.append(f"peer{i:03d} ansible_host=10.232.{i // 120}.{2 * (i % 120) + 1}")
    out += ["", "[all:vars]", "host_firewall_management_sources='[\"10.231.0.1/32\"]'", ""]
    return "\n".join(out)


def on(host, cmd):
    return subprocess.run([str(LAB), "exec", host, "sh", "-c", cmd], capture_output=True, text=True, check=True).stdout


def main() -> int:
    hosts = lab_hosts()
    ufw_host = next(h for h, (_addr, b) in hosts.items() if b == "ufw")
    nft_host = next(h for h, (_addr, b) in hosts.items() if b == "nftables")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        inv = d / "scale.ini"
        inv.write_text(inventory(ufw_host, hosts[ufw_host][0], nft_host, hosts[nft_host][0]))
        flows = subprocess.run([ROOT / "bin" / "vorfw", "plan", "-i", inv, "--limit", ufw_host], env=ENV,
                               capture_output=True, text=True, check=True).stdout
        rules = []
        for line in flows.splitlines():
            host, direction, proto, port, peer = line.split("\t")[:5]
            if direction == "in":
                src = "any" if peer in ("0.0.0.0/0", "::/0") else peer
                rules.append({"src": src, "port": port, "proto": proto, "comment": "bench"})
        print(f"inventory: {N} hosts; {ufw_host} (ufw) and {nft_host} (nftables) each admit {len(rules)} host-level rules")

        subprocess.run([LAB, "up", "--fresh"], check=True, capture_output=True)
        site = ROOT / "playbooks" / "site.yml"
        no_entra = ("-e", "entra_egress_enabled=false")  # the host firewall only, as before
        ufw_first = play("-i", inv, site, "-l", ufw_host, *no_entra)
        ufw_rerun = play("-i", inv, site, "-l", ufw_host, *no_entra)
        nft_first = play("-i", inv, site, "-l", nft_host, *no_entra)
        nft_rerun = play("-i", inv, site, "-l", nft_host, *no_entra)
        ufw_rules = int(on(ufw_host, "ufw status | grep -c vorfw: || true").strip() or 0)
        nft_elems = on(nft_host, "nft -j list table inet vorstream")
        elements = sum(len(o["set"].get("elem", [])) for o in json.loads(nft_elems)["nftables"] if "set" in o)

        subprocess.run([LAB, "up", "--fresh"], check=True, capture_output=True)
        sample = rules if SAMPLE <= 0 else rules[:SAMPLE]
        (d / "rules.json").write_text(json.dumps({"bench_rules": sample, "target": ufw_host}))
        (d / "ufw.yml").write_text(UFW_LOOP)
        loop_first = play("-i", inv, d / "ufw.yml", "-e", f"@{d / 'rules.json'}")
        loop_rerun = play("-i", inv, d / "ufw.yml", "-e", f"@{d / 'rules.json'}")
        scale = len(rules) / len(sample)
        loop_first *= scale
        loop_rerun *= scale

    note = "" if scale == 1 else f" (measured on {len(sample)} of {len(rules)} rules, scaled x{scale:.1f})"
    print(f"{'':40} {'first apply':>12} {'re-run':>10}")
    print(f"{'community.general.ufw loop' + note:40} {loop_first:11.1f}s {loop_rerun:9.1f}s")
    print(f"{'vorstream.firewall, ufw host':40} {ufw_first:11.1f}s {ufw_rerun:9.1f}s   ({ufw_rules} ufw rules)")
    print(f"{'vorstream.firewall, nftables host':40} {nft_first:11.1f}s {nft_rerun:9.1f}s   ({elements} set elements)")
    r1, r2 = loop_first / ufw_first, loop_rerun / ufw_rerun
    print(f"speed-up on ufw vs community.general.ufw loop: first {r1:.0f}x, re-run {r2:.0f}x (target >= 10x)")
    ok = r1 >= 10 and r2 >= 10
    print("targets:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
