# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Action plugin for vorstream.firewall.plan: hands the inventory, as Ansible resolved it,
to the Rust planner running on the controller."""
from __future__ import annotations

from ansible_collections.vorstream.firewall.plugins.plugin_utils.binary_module import BinaryModuleAction

# The variables the planner reads; everything else in hostvars stays on the controller.
PLAN_VARS = ("ansible_host",)
PLAN_PREFIX = "host_firewall_"


# Jinja's delimiters (Ansible keeps the defaults): a value without them templates to itself.
_DELIMITERS = ("{{", "{%", "{#")


def _templated(value) -> bool:
    if isinstance(value, str):
        return any(d in value for d in _DELIMITERS)
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    return False


class ActionModule(BinaryModuleAction):
    MODULE = "plan"

    def module_args(self, task_vars):
        args = dict(self._task.args)
        if "inventory" in args:
            return args
        groups = task_vars.get("groups", {})
        hostvars = task_vars.get("hostvars", {})
        hosts = groups.get("all", [])
        slim = {}
        for h in hosts:
            # Each host's variables as Ansible resolved them, templated only where a value holds
            # a template: a 10,000-host inventory is mostly plain values, and a templar per host
            # would cost more than the planner itself.
            raw = hostvars.raw_get(h)
            wanted = [k for k in raw if k.startswith(PLAN_PREFIX) or k in PLAN_VARS]
            if any(_templated(raw[k]) for k in wanted):
                hv = hostvars[h]
                slim[h] = {k: self._templar.template(hv[k]) for k in wanted}
            else:
                slim[h] = {k: raw[k] for k in wanted}
        args["groups"] = {g: list(hs) for g, hs in groups.items()}
        args["hostvars"] = slim
        # Peers come from the whole inventory, but only the play's hosts need their plans back
        # (a plan of a large fleet is large; Ansible would carry every one to every task).
        if "hosts" not in args and task_vars.get("ansible_play_hosts_all"):
            args["hosts"] = list(task_vars["ansible_play_hosts_all"])
        return args
