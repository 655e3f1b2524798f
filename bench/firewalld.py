#!/usr/bin/env python
"""firewalld benchmark on the namespace lab, measured side by side in one run.

The same per-host rules (every inbound flow of `vorfw plan` for the lab) applied
  A. with a loop of ansible.posix.firewalld tasks (one rich rule per peer and port, permanent
     and immediate), as operators do without this collection, and
  B. with this collection's role (playbooks/site.yml),
each on a freshly reset lab (first converge) and then again (idempotent re-run); plus a bare
ansible.builtin.ping play on the same hosts. Prints wall times and ratios.
Targets: B at least 10x faster than A on both runs; B's re-run within 3x of the ping play.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from labbench import ENV, LAB, LAB_INV as INV, ROOT, lab_lines, timed_playbook

# Settings shared by both sides: SSH only from the controller, Vault dynamic secrets.
SETTINGS = """all:
  vars:
    host_firewall_management_sources: ["10.231.0.1/32", "fd00:231::1/128"]
    host_firewall_vault_dynamic_secrets: [postgres, rabbitmq]
"""
POSIX_PLAY = """- hosts: all
  gather_facts: false
  tasks:
    - name: One rich rule per peer and port
      ansible.posix.firewalld:
        rich_rule: "{{ item }}"
        zone: public
        permanent: true
        immediate: true
        state: enabled
      loop: "{{ bench_rules[inventory_hostname] }}"
"""
PING_PLAY = """- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.ping:
"""


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, env=ENV, **kw)


def firewalld_hosts() -> list[str]:
    return [l.split()[0] for l in lab_lines() if "lab_backend=firewalld" in l]


def main() -> int:
    if subprocess.run(["ansible-doc", "ansible.posix.firewalld"], env=ENV, capture_output=True, check=False).returncode != 0:
        sys.exit("ansible.posix is missing: pip install -r bench/requirements.txt into .venv (make bench does)")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        settings = d / "settings.yml"
        settings.write_text(SETTINGS)
        flows = sh(ROOT / "bin" / "vorfw", "plan", "-i", INV, "-i", settings, capture_output=True, text=True).stdout
        hosts = firewalld_hosts()
        limit = ",".join(hosts)
        rules: dict[str, list[str]] = {}
        for line in flows.splitlines():
            host, direction, proto, port, peer = line.split("\t")[:5]
            if direction != "in" or host not in hosts:
                continue
            fam = "ipv6" if ":" in peer else "ipv4"
            src = "" if peer in ("0.0.0.0/0", "::/0") else f' source address="{peer}"'
            rules.setdefault(host, []).append(f'rule family="{fam}"{src} port port="{port}" protocol="{proto}" accept')
        (d / "rules.json").write_text(json.dumps({"bench_rules": rules}))
        (d / "posix.yml").write_text(POSIX_PLAY)
        (d / "ping.yml").write_text(PING_PLAY)
        n_rules = sum(len(v) for v in rules.values())
        print(f"lab: {len(rules)} firewalld hosts, {n_rules} host-level inbound rules (forks={ENV['ANSIBLE_FORKS']})")

        sh(LAB, "up", "--fresh", capture_output=True)
        posix_first = timed_playbook("-i", INV, "-l", limit, d / "posix.yml", "-e", f"@{d / 'rules.json'}")
        posix_rerun = timed_playbook("-i", INV, "-l", limit, d / "posix.yml", "-e", f"@{d / 'rules.json'}")

        sh(LAB, "up", "--fresh", capture_output=True)
        ours_first = timed_playbook("-i", INV, "-i", settings, "-l", limit, ROOT / "playbooks" / "site.yml", "-e", "entra_egress_enabled=false")
        ours_rerun = timed_playbook("-i", INV, "-i", settings, "-l", limit, ROOT / "playbooks" / "site.yml", "-e", "entra_egress_enabled=false")
        ping = min(timed_playbook("-i", INV, "-l", limit, d / "ping.yml") for _i in range(2))

    print(f"{'':34} {'first converge':>15} {'re-run':>10}")
    print(f"{'ansible.posix.firewalld loop':34} {posix_first:14.1f}s {posix_rerun:9.1f}s")
    print(f"{'vorstream.firewall.host_firewall':34} {ours_first:14.1f}s {ours_rerun:9.1f}s")
    print(f"{'ansible.builtin.ping play':34} {'':15} {ping:9.1f}s")
    r1, r2, r3 = posix_first / ours_first, posix_rerun / ours_rerun, ours_rerun / ping
    print(f"speed-up vs ansible.posix loop: first converge {r1:.1f}x, re-run {r2:.1f}x (target >= 10x)")
    print(f"re-run cost vs ping play: {r3:.2f}x (target <= 3x)")
    ok = r1 >= 10 and r2 >= 10 and r3 <= 3
    print("targets:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
