#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
# Documentation stub: the work is done by the refresher installed on the host (vorfw-entra,
# rust/crates/entra), run by plugins/action/entra_refresh.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: entra_refresh
short_description: Refresh the Microsoft Entra ID egress allow-list on a host and apply it
version_added: "0.1.0"
description:
  - Runs the refresher installed by the C(vorstream.firewall.entra_egress) role
    (C(vorfw-entra apply)) on the host. It gets Microsoft's "Azure IP Ranges and Service Tags"
    file (discovered on the download page, an explicit or mirror URL, or a local file), validates
    it (cloud, tags, CIDRs, non-empty, and plausibility limits - no prefix wider than a /16 or
    /32, none in special-use ranges, bounded additions, list size and changeNumber jump),
    merges it with the last applied list (additions at once; removals stay allowed for a grace
    period; a mass removal or one from a lower changeNumber is held - still allowed - until
    later files confirm it, or C(--force)), applies
    the effective list to the host firewall (the request the M(vorstream.firewall.apply) module
    last recorded, with the new list, as one converge), and only then saves the new state.
  - A failed refresh leaves the firewall and the saved list exactly as they were, writes the
    reason to C(status.json) in the state directory, and fails the task with that reason.
  - In check mode nothing is written; the result and C(--diff) show the prefixes that would be
    added and removed and what would change in the firewall.
author:
  - vorstream.firewall contributors (!UNKNOWN)
options:
  binary:
    description: Path of the installed refresher on the host.
    type: path
    default: /usr/local/libexec/vorstream-firewall/vorfw-entra
  state_dir:
    description: The refresher's state directory.
    type: path
    default: /var/lib/vorstream-firewall/entra
  args:
    description: Feed arguments (C(--cloud), C(--tag), C(--url), C(--file), C(--grace), ...; see C(vorfw-entra apply --help)).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result shows the prefixes that would be added and removed.
  diff_mode:
    support: full
    description: The prefixes added and removed, and what changes in the firewall (in check mode, what would).
  platform:
    support: full
    description: Target OS/families that can be operated against.
    platforms: posix
notes:
  - Needs root to change the firewall; use C(become=true).
"""

EXAMPLES = r"""
- name: Refresh from a local mirror and apply
  vorstream.firewall.entra_refresh:
    args: [--url, "https://mirror.example.internal/azure/ServiceTags_Public.json"]
  become: true
"""

RETURN = r"""
summary:
  description: One line about the refresh (changeNumber, added, removed, effective counts).
  returned: success
  type: str
change_number:
  description: The applied file's changeNumber.
  returned: success
  type: int
added:
  description: Prefixes added to the effective list.
  returned: success
  type: list
  elements: str
removed:
  description: Prefixes no longer allowed (grace period over).
  returned: success
  type: list
  elements: str
in_grace:
  description: Prefixes the file no longer publishes that stay allowed until their grace period ends.
  returned: success
  type: list
  elements: dict
held:
  description:
    - Held removals - prefixes a file dropped that stay allowed until later files confirm the
      removal - with C(reason), C(detail), C(since), C(files), C(needed), C(remaining_files) and
      C(expected_at).
  returned: success
  type: list
  elements: dict
prefixes:
  description: Counts of the effective list (effective, published, in_grace, held, ipv4, ipv6).
  returned: success
  type: dict
firewall:
  description: What the apply step did (changed, summary, backend, changes).
  returned: success
  type: dict
"""
