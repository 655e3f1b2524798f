#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
# Documentation stub: the module is a Rust binary (rust/crates/mod-verify), dispatched by
# plugins/action/verify.py to plugins/modules/__bin__/verify_<arch>.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify
short_description: Probe TCP and UDP flows from a host and check the firewall allows or blocks each as planned
version_added: "0.1.0"
description:
  - Sends real packets from the target host to every destination in O(probes) and checks that
    the firewall lets the flow through (C(expect=allowed)) or stops it (C(expect=blocked)).
  - TCP probes open a connection with a timeout. The result is C(open) when it connects,
    C(closed) when a reset comes back (reachable, nothing listening), and C(filtered) on a
    timeout or an ICMP unreachable, admin-prohibited or host-prohibited reject (or a local
    reject, EACCES/EPERM).
  - UDP probes send a small datagram on a connected socket and wait for a reply, re-sending it
    O(udp_retries) times within O(timeout_ms). The result is C(open) on any reply, C(closed)
    on an ICMP port unreachable, C(filtered) on an ICMP unreachable or prohibited, and
    C(no-reply) when nothing at all comes back. A UDP service that ignores unknown datagrams
    looks the same as a firewall that drops them, so C(no-reply) is reported distinctly; it
    counts as blocked.
  - C(open) and C(closed) count as allowed; C(filtered) and C(no-reply) count as blocked.
    C(error) (the probe could not be sent, for example the address family is not supported on
    the host) matches neither expectation.
  - Probing is read-only. The module never changes anything (C(changed=false)) and probes in
    check mode too.
  - Probes run concurrently (O(concurrency) at a time), so a full matrix takes about
    O(timeout_ms) times the number of rounds, not the number of probes.
author:
  - vorstream.firewall contributors (!UNKNOWN)
options:
  probes:
    description:
      - The flows to probe from the target host.
    type: list
    elements: dict
    required: true
    suboptions:
      dst:
        description:
          - The destination, an IPv4 or IPv6 unicast address literal (no host names).
        type: str
        required: true
      port:
        description:
          - The destination port, 1 to 65535.
        type: int
        required: true
      protocol:
        description:
          - The transport protocol.
        type: str
        choices: [tcp, udp]
        required: true
      expect:
        description:
          - What the firewall plan says of the flow.
        type: str
        choices: [allowed, blocked]
        required: true
      label:
        description:
          - Free text naming the flow in the results, the matrix and the failure message.
        type: str
  timeout_ms:
    description:
      - Per-probe time limit in milliseconds (1 to 300000). For TCP the connect timeout, for UDP
        the whole exchange including retries.
    type: int
    default: 1500
  udp_retries:
    description:
      - How many times a UDP datagram is re-sent when no answer came (0 to 10).
    type: int
    default: 2
  concurrency:
    description:
      - How many probes run at once (1 to 1024).
    type: int
    default: 64
  fail_on_mismatch:
    description:
      - Fail the task when any flow does not match its expectation. The results are returned
        either way.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Probing is read-only; the module probes in check mode too.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to show as a diff.
  platform:
    support: full
    description: Target OS/families that can be operated against.
    platforms: posix
notes:
  - Every argument is validated before any packet is sent. A bad probe fails the task with a
    message naming the probe's index, field and value, for example C(probes[3].port) followed
    by C(70000 is out of range 1-65535).
  - A firewall that rejects with a TCP reset or an ICMP port unreachable cannot be told apart
    from an open firewall in front of a closed port, and is reported as C(closed) (allowed).
    Rejects with ICMP admin-prohibited or host-prohibited (firewalld's default) and silent drops
    (ufw's default) are reported as C(filtered).
  - An open TCP connection is closed straight away; a UDP probe sends the 12-byte datagram
    C(vorfw-probe) followed by a newline.
"""

EXAMPLES = r"""
- name: Check what web1 may reach
  vorstream.firewall.verify:
    probes:
      - {dst: 10.231.0.22, port: 8001, protocol: tcp, expect: allowed, label: web to django api}
      - {dst: 10.231.0.43, port: 5432, protocol: tcp, expect: blocked, label: web to postgres}
      - {dst: 10.231.0.11, port: 8600, protocol: udp, expect: allowed, label: consul dns}
  delegate_to: web1

- name: Probe everything, report, and decide later
  vorstream.firewall.verify:
    probes: "{{ flows }}"
    timeout_ms: 800
    fail_on_mismatch: false
  register: probe

- name: Show the matrix
  ansible.builtin.debug:
    msg: "{{ probe.matrix.splitlines() }}"
"""

RETURN = r"""
msg:
  description:
    - The verdict, for example C(all 120 flows match the plan), or on failure
      C(3 of 120 flows do not match the plan) followed by the first few mismatches.
  returned: always
  type: str
results:
  description: One result per probe, in the order of O(probes).
  returned: when the arguments are valid
  type: list
  elements: dict
  contains:
    dst:
      description: The destination address.
      type: str
    port:
      description: The destination port.
      type: int
    protocol:
      description: C(tcp) or C(udp).
      type: str
    expect:
      description: C(allowed) or C(blocked).
      type: str
    state:
      description: What was observed - C(open), C(closed), C(filtered), C(no-reply) or C(error).
      type: str
    allowed:
      description: Whether the firewall let the packet through (C(open) or C(closed)).
      type: bool
    ok:
      description: Whether the state matches O(probes[].expect).
      type: bool
    label:
      description: The probe's label, or an empty string.
      type: str
    detail:
      description: What happened, with the operating system's error text when there was one.
      type: str
    elapsed_ms:
      description: How long the probe took, in milliseconds.
      type: int
  sample:
    - dst: 10.231.0.22
      port: 8001
      protocol: tcp
      expect: allowed
      state: filtered
      allowed: false
      ok: false
      label: web to django api
      detail: "connect: No route to host (os error 113)"
      elapsed_ms: 1
summary:
  description: Counts over all results.
  returned: when the arguments are valid
  type: dict
  contains:
    total:
      description: The number of probes.
      type: int
    ok:
      description: Probes whose state matches the expectation.
      type: int
    mismatches:
      description: Probes whose state does not match the expectation.
      type: int
    allowed_ok:
      description: Probes expected allowed that were allowed.
      type: int
    blocked_ok:
      description: Probes expected blocked that were blocked.
      type: int
    open:
      description: Probes in state C(open).
      type: int
    closed:
      description: Probes in state C(closed).
      type: int
    filtered:
      description: Probes in state C(filtered).
      type: int
    no_reply:
      description: Probes in state C(no-reply).
      type: int
    error:
      description: Probes in state C(error).
      type: int
  sample: {total: 3, ok: 2, mismatches: 1, allowed_ok: 1, blocked_ok: 1, open: 1, closed: 0, filtered: 2, no_reply: 0, error: 0}
mismatches:
  description: The results whose state does not match the expectation (same keys as RV(results)).
  returned: when the arguments are valid
  type: list
  elements: dict
matrix:
  description:
    - One aligned line per probe - label, destination, expectation, state and C(OK) or
      C(MISMATCH). Unlabelled probes show C(-).
  returned: when the arguments are valid
  type: str
  sample: "web to django api  10.231.0.22:8001/tcp  allowed  filtered  MISMATCH"
"""
