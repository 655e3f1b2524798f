#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
# Documentation stub: the module is a Rust binary (rust/crates/mod-apply), dispatched by
# plugins/action/apply.py to plugins/modules/__bin__/apply_<arch>.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: apply
short_description: Make a host's firewall admit exactly its VOR Stream plan
version_added: "0.1.0"
description:
  - Enforces one host's plan (from M(vorstream.firewall.plan)) with the host's firewall.
  - B(firewalld) - talks to firewalld over its D-Bus API and changes the runtime and the
    permanent configuration together. Each peer set becomes one C(hash:net) ipset per address
    family, named C(vorfw-<set>-4) or C(vorfw-<set>-6); each accepted port is a rich rule pairing
    such an ipset with the port, in the zones serving the interfaces that carry the host's plan
    addresses (sources are never bound to zones). Only objects named C(vorfw-...) and rich rules
    whose source is such an ipset are ever changed; owned objects the plan no longer has are
    removed. Everything else (your own rich rules, services and ports, Docker's or fail2ban's
    rules) is left alone, and runtime-only items a reload would drop are put back.
  - New ipsets exist only after a reload (a firewalld limitation); membership changes are applied
    in place without one.
  - B(nftables) (hosts where neither firewalld nor ufw is active) - one table of its own,
    C(inet vorstream), with a named interval set per peer set and family and an input chain
    (policy drop) accepting loopback, established traffic, the ICMP that IP needs and exactly the
    plan's ports; everything else is rejected. It is replaced in one atomic C(nft -f)
    transaction and persisted in C(/etc/vorstream-firewall/vorstream.nft), which the boot-time
    configuration (C(/etc/sysconfig/nftables.conf) or C(/etc/nftables.conf)) includes. Other
    tables are never touched.
  - B(ufw) - see the ufw notes below.
  - Backend choice (C(host_firewall_backend)) - C(auto) uses firewalld when it is running, ufw
    when it is enabled, nftables when neither is; both active is an error, not a guess. An
    explicit C(firewalld) also works with firewalld stopped (offline edits); an explicit
    C(nftables) or C(ufw) refuses to run beside an active firewalld (or ufw).
  - When firewalld is not running (and the backend is C(firewalld)), the permanent configuration
    is edited offline with C(firewall-offline-cmd).
  - An unchanged plan makes no write calls and reports C(changed=false). In check mode nothing is
    written and C(changes) lists exactly what would be done; with C(--diff) the owned objects
    before and after are shown one per line.
  - If a step fails, the steps already done are undone and the error names the failed step.
  - B(Egress) - with C(host_firewall_egress=restricted) the host may send only to loopback,
    established traffic, DNS to C(host_firewall_dns_servers) (default - the host's resolv.conf
    servers), NTP to C(host_firewall_ntp_servers), the plan's outbound flows (the mirror of its
    peers' inbound rules), C(host_firewall_egress_extra_rules) and, on OIDC clients (Mid-Tier,
    Django, Vault, SDK), HTTPS to the Entra ID set; everything else is rejected. firewalld uses
    one owned policy object C(vorfw-egress) (HOST to ANY, target REJECT), nftables an output
    chain in C(inet vorstream), ufw C(allow out) rules and a C(reject) outgoing default (the
    previous default is recorded in C(/etc/vorstream-firewall/ufw-output-policy) and restored
    with C(open)). Replies of management SSH sessions are allowed out explicitly, so restricting
    a host over Ansible's own SSH connection never cuts it.
  - B(Entra ID set) - on OIDC clients the Entra ID list the host holds (C(entra_state_dir), kept
    by the M(vorstream.firewall.entra_refresh) refresher) becomes the address set C(entra) with
    an outbound HTTPS accept, with open egress too, so it is always current. A restricted OIDC
    client with no list yet is refused (sign-in would break).
  - Each successful run records its request in C(/etc/vorstream-firewall/applied.json); the
    weekly refresher re-applies it with each new list.
  - When the plan's C(lockout_guard) is true (C(host_firewall_management_sources) unset),
    SSH stays open from the controller's address as the host sees it.
author:
  - vorstream.firewall contributors (!UNKNOWN)
options:
  plan:
    description:
      - One host's entry of the plan, as returned by M(vorstream.firewall.plan) in
        C(plans[host]), with O(sets); or one host's whole request (its sets included).
    type: dict
    required: true
  sets:
    description:
      - The plan's set table (C(sets) of M(vorstream.firewall.plan)). The action plugin sends
        the host only the sets its entry names.
    type: dict
  backend:
    description:
      - Overrides the plan's backend (C(host_firewall_backend)).
    type: str
    choices: [auto, firewalld, ufw, nftables]
  controller_address:
    description:
      - The controller's address for the lockout guard. By default the action plugin takes it
        from the SSH connection (or C(host_firewall_controller_address)).
    type: str
  zones:
    description: firewalld zones to manage instead of the zones serving the host's addresses.
    type: list
    elements: str
  entra_state_dir:
    description: The Entra ID refresher's state directory on the host (its C(state.json) holds the list).
    type: path
    default: /var/lib/vorstream-firewall/entra
  oidc_state_dir:
    description:
      - The OIDC providers' state directory on the host (C(vorfw-entra oidc refresh) keeps one
        C(<id>.json) per provider of C(host_firewall_oidc_providers)); each becomes the set C(oidc-<id>).
    type: path
    default: /var/lib/vorstream-firewall/oidc
  entra_prefixes:
    description: Use these Entra ID prefixes instead of the list the host holds.
    type: list
    elements: str
  confirm_timeout:
    description:
      - Commit-confirm, in seconds (5 to 3600; V(0) is off). Before the firewall changes, the
        host records its owned firewall state and the applied record, and starts a watchdog.
        The action plugin then drops its connection, reaches the host over a new one and
        confirms. Unconfirmed at the deadline (the new rules cut the controller off, the
        controller died), the host puts the previous state back by itself; the task fails
        naming the host and saying it was rolled back.
      - Leave room for reaching the host under the play's load; a new connection and the
        confirm took 3 to 4 s on an idle lab host but 7 to 25 s with 12 hosts at once on a
        2-core controller. The result gives C(confirm_seconds); a warning says when the confirm
        used more than half the timeout. 120 is a sound start.
      - A run that changes nothing, or fails (and restores the previous state itself), leaves
        no watchdog. The watchdog is a detached process; like Ansible's C(async) tasks it does
        not survive a reboot, or logind's C(KillUserProcesses=yes) for the connecting user.
    type: int
    default: 0
  metrics_dir:
    description:
      - node_exporter's textfile collector directory. Each run writes a Prometheus text-format
        file there (C(vorstream_firewall_apply.prom), or in check mode
        C(vorstream_firewall_check.prom), whose C(vorstream_firewall_drift) says whether the
        firewall differs from the plan), replaced atomically. Nothing is written when the
        directory does not exist; an empty string turns it off.
    type: str
    default: /var/lib/prometheus/node-exporter
attributes:
  check_mode:
    support: full
    description: The firewall is not touched; C(changes) lists exactly what would be done. Only the check's metrics file is written (see O(metrics_dir)).
  diff_mode:
    support: full
    description: The owned firewall objects before and after, one per line (in check mode, as they would be).
  platform:
    support: full
    description: Target OS/families that can be operated against.
    platforms: posix
notes:
  - Needs root (D-Bus access to firewalld); use C(become=true).
  - The binary is static (musl) for x86_64 and aarch64 and runs on RHEL 8/9, Ubuntu and Debian.
"""

EXAMPLES = r"""
- name: Plan once
  vorstream.firewall.plan:
  run_once: true
  delegate_to: localhost
  register: fw

- name: Enforce each host's plan
  vorstream.firewall.apply:
    plan: "{{ fw.plans[inventory_hostname] }}"
    sets: "{{ fw.sets }}"
  become: true
"""

RETURN = r"""
backend:
  description: The backend used.
  returned: success
  type: str
  sample: firewalld
firewalld_running:
  description: Whether firewalld was running (false means the permanent configuration was edited offline).
  returned: success
  type: bool
metrics_file:
  description: The metrics file written (see O(metrics_dir)).
  returned: when the metrics directory exists
  type: str
  sample: /var/lib/prometheus/node-exporter/vorstream_firewall_apply.prom
firewalld_version:
  description:
    - The firewalld release (its D-Bus C(version) property, or C(firewall-offline-cmd --version) offline).
    - Rules are written in what that release understands.
  returned: when the backend is firewalld
  type: str
  sample: 0.9.11
seconds:
  description:
    - The host's own time for the converge (the host lock, reading the firewall, the diff and the change).
    - Without the connection and the module upload.
  returned: success
  type: float
  sample: 0.41
zones:
  description: The zones managed.
  returned: success
  type: list
  elements: str
changes:
  description: What was (or in check mode would be) done, one step per item.
  returned: success
  type: list
  elements: str
restored:
  description: Runtime-only items of others that a reload dropped and that were put back.
  returned: success
  type: list
  elements: str
accepts:
  description: The accepted (set, family, protocol, port) entries with the plan rule ids behind each.
  returned: success
  type: list
  elements: dict
egress:
  description: The egress mode, the outbound accepts (destination sets) and the number of Entra ID prefixes applied.
  returned: success
  type: dict
  sample: {"mode": "restricted", "accepts": [], "entra_prefixes": 216}
confirmed:
  description: With O(confirm_timeout), true when the change was confirmed over a new connection.
  returned: when a change was armed for commit-confirm
  type: bool
confirm_seconds:
  description:
    - With O(confirm_timeout), how long the confirm took (seconds from the change to the host's
      answer over the new connection). A warning says so when it used more than half the timeout.
  returned: when a change was confirmed
  type: float
  sample: 4.2
confirm_attempts:
  description: With O(confirm_timeout), how many new connections it took to confirm.
  returned: when a change was confirmed
  type: int
  sample: 1
rolled_back:
  description: With O(confirm_timeout), true when the host rolled the change back by itself.
  returned: when the change cut the controller off
  type: bool
"""
