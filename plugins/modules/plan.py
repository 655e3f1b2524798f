#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
# Documentation stub: the module is a Rust binary (rust/crates/mod-plan), dispatched by
# plugins/action/plan.py to plugins/modules/__bin__/plan_<arch>.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: plan
short_description: Compute every host's VOR Stream firewall plan from the inventory
version_added: "0.1.0"
description:
  - Turns VOR Stream's port matrix (embedded in the module) and the inventory, as Ansible
    resolved it, into one plan per host - the services it runs, the inbound flows it admits
    (port, protocol, source CIDRs, purpose, matrix row id) and the outbound flows it opens.
  - The action plugin passes C(groups) and every host's C(host_firewall_*) variables and
    C(ansible_host) to the planner, so run it once, on the controller
    (C(run_once=true), C(delegate_to=localhost)).
  - Bad input (an unknown variable value, a malformed CIDR, a port out of range, a host without
    an address, an extra rule naming an unknown service or group) fails the task with one message
    naming the host, variable and value, before any host is touched.
  - Host addresses come from C(host_firewall_address), else C(ansible_host) when it is an IP
    literal, else the name resolved by the controller's resolver.
author:
  - vorstream.firewall contributors (!UNKNOWN)
options:
  inventory:
    description:
      - The JSON printed by C(ansible-inventory --list). When omitted (the usual case), the
        action plugin passes the play's own inventory.
    type: dict
  hosts:
    description:
      - Only return the plans of these hosts (peers still come from the whole inventory).
        Defaults to the play's hosts (C(ansible_play_hosts_all)).
    type: list
    elements: str
  probes:
    description:
      - Also return, per host, the probes that M(vorstream.firewall.verify) sends from it
        (required-open flows and forbidden ports to every peer), in C(probes).
    type: bool
    default: false
  probe_management:
    description: With O(probes), also probe the management SSH port.
    type: bool
    default: false
  probe_coverage:
    description:
      - With O(probes), how much to probe. V(full) probes every port of every host from every
        other host (hosts squared times ports). V(covering) probes each target from one source
        of each class of sources its plan treats alike on every port (the same rules admit
        them, the same ports are forbidden) - every rule is still proven with a source of each
        kind it admits, and every forbidden class; C(probe_coverage.summary) says what it covered.
    type: str
    choices: [full, covering]
    default: full
  report:
    description:
      - Also return the sign-off report of the whole inventory in C(report_html) - one
        self-contained HTML page, as C(vorfw report) writes it (the flows as a diagram, the rules
        per service and per host, and the probe results of O(verify_results) when given).
    type: bool
    default: false
  verify_results:
    description:
      - With O(report), probe results to show - source host to that host's
        M(vorstream.firewall.verify) result, or its C(results) list.
    type: dict
  cloud:
    description:
      - Also return the whole inventory as cloud security policy in C(cloud), as
        C(vorfw plan --format aws-sg|azure-nsg) prints it (the C(vorstream.firewall.cloud_security_groups)
        role applies it).
    type: dict
    suboptions:
      format:
        description: V(aws-sg) (security groups and prefix lists) or V(azure-nsg) (an ARM template).
        type: str
        choices: [aws-sg, azure-nsg]
        required: true
      groups:
        description: The inventory groups that are cloud groups; default every group the plan's rules name.
        type: list
        elements: str
      nsg_mode:
        description: Azure - one NSG per subnet (O(cloud.subnets)) or one per group.
        type: str
        choices: [subnet, service]
        default: subnet
      subnets:
        description: Azure, O(cloud.nsg_mode=subnet) - subnet name to the inventory groups its hosts are in.
        type: dict
      external:
        description: External audiences' rules in the groups (V(group)) or left to a perimeter (V(perimeter)).
        type: str
        choices: [group, perimeter]
        default: group
      egress:
        description: Egress rules - V(auto) follows the hosts' C(host_firewall_egress).
        type: str
        choices: [auto, open, restricted]
        default: auto
      aws_rules_quota:
        description: AWS - rules per security group and direction the account allows.
        type: int
        default: 1000
      aws_prefix_list_entries:
        description: AWS - C(max_entries) of the Entra ID prefix lists.
        type: int
        default: 300
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to show as a diff.
  platform:
    support: full
    description: Target OS/families that can be operated against.
    platforms: posix
notes:
  - Variables read per host - C(host_firewall_database), C(host_firewall_vault_dynamic_secrets),
    C(host_firewall_admin_sources), C(host_firewall_power_user_sources),
    C(host_firewall_user_sources), C(host_firewall_management_sources), C(host_firewall_address),
    C(host_firewall_extra_rules), C(host_firewall_disabled_rules), C(host_firewall_backend).
    See the C(vorstream.firewall.host_firewall) role's README for their meaning and defaults.
"""

EXAMPLES = r"""
- name: Plan every host's firewall once, on the controller
  vorstream.firewall.plan:
  run_once: true
  delegate_to: localhost
  register: fw

- name: Show what web1 will admit
  ansible.builtin.debug:
    var: fw.plans.web1.inbound
"""

RETURN = r"""
format:
  description: The plan's format, C(vorstream.firewall/plan/v2).
  returned: success
  type: str
sets:
  description:
    - The peer sets, each once - table id to C(members) (C(hosts) - inventory hosts, each host
      leaves out its own addresses; C(networks) - CIDRs from variables) and C(nets), aggregated
      to the fewest CIDRs. Pass it with a host's entry to M(vorstream.firewall.apply).
  returned: success
  type: dict
  sample: {"g-consul": {"members": "hosts", "nets": ["10.0.0.10/31"]}}
plans:
  description: One entry per host, keyed by inventory host name; its rules name sets.
  returned: success
  type: dict
  contains:
    format:
      description: The request format, C(vorstream.firewall/request/v2).
      type: str
    addresses:
      description: The host's own addresses.
      type: list
      elements: str
    groups:
      description: The inventory groups the host is in.
      type: list
      elements: str
    services:
      description: The VOR Stream services the host runs (Consul Client on every host).
      type: list
      elements: str
    backend:
      description: The requested firewall backend (C(auto), C(firewalld), C(ufw), C(nftables)).
      type: str
    lockout_guard:
      description: C(host_firewall_management_sources) is unset, so SSH stays open from the controller.
      type: bool
    inbound:
      description: Inbound rules - C(id), C(port), C(protocol), C(set) (a key of C(sets)), C(purpose), C(label).
      type: list
      elements: dict
    outbound:
      description: Outbound rules (the mirror of peers' inbound rules), as C(inbound).
      type: list
      elements: dict
    sets:
      description: The host's set keys and their ids in the plan's C(sets).
      type: dict
  sample:
    web1:
      format: vorstream.firewall/request/v2
      addresses: ["10.0.0.23"]
      services: ["Consul Client", "Web"]
      inbound:
        - {id: ext-web-8081-users, port: 8081, protocol: tcp, set: a-user, purpose: Web UI, label: "All users (host_firewall_user_sources)"}
      sets: {a-user: a-user}
probe_coverage:
  description: With O(probes), what the probes cover (C(summary), a sentence, and C(counts)).
  returned: when O(probes) is true
  type: dict
probes:
  description: With O(probes), per host the probes M(vorstream.firewall.verify) sends from it.
  returned: when O(probes) is true
  type: dict
report_html:
  description: With O(report), the sign-off report (an HTML page; every value escaped).
  returned: when O(report) is true
  type: str
cloud:
  description:
    - With O(cloud), for V(aws-sg) the security groups (C(security_groups), each with C(rules) and
      C(rules_egress) in the shape M(amazon.aws.ec2_security_group) takes), C(prefix_lists) and
      C(perimeter); for V(azure-nsg) an ARM template (C(resources)).
  returned: when O(cloud) is given
  type: dict
host_count:
  description: The number of hosts planned (the whole inventory; C(plans) holds only the requested ones).
  returned: success
  type: int
"""
