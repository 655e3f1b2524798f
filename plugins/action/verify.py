# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Action plugin for vorstream.firewall.verify: runs the Rust flow prober on the target host,
so the probes start where the traffic starts."""
from __future__ import annotations

from ansible_collections.vorstream.firewall.plugins.plugin_utils.binary_module import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    MODULE = "verify"
