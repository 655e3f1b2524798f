# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Action plugin for vorstream.firewall.apply.

Besides picking the binary for the target's CPU, it finds the controller's address as the host
sees it (the client end of the SSH connection), so that a host whose
host_firewall_management_sources is unset keeps SSH open from the controller: a run can never
cut Ansible off. One extra round trip, made without become. It also sends the host only the
peer sets its plan names.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.vorstream.firewall.plugins.plugin_utils.binary_module import BinaryModuleAction


class ActionModule(BinaryModuleAction):
    MODULE = "apply"

    def target_arch(self, task_vars):
        # "x86_64 10.0.0.1 53422 10.0.0.22 22": the arch, then $SSH_CONNECTION if any.
        res = self._low_level_execute_command('echo "$(uname -m) ${SSH_CONNECTION:-}"', sudoable=False)
        if res.get("rc") != 0:
            raise AnsibleActionFail("cannot query the target: %s" % res.get("stderr", "").strip())
        words = res.get("stdout", "").split()
        if not words:
            raise AnsibleActionFail("cannot determine the target's CPU architecture")
        local = getattr(self._connection, "_load_name", "").endswith("local")
        self._controller = words[1] if len(words) > 1 and not local else None
        return words[0]

    def module_args(self, task_vars):
        args = dict(self._task.args)
        # The plan's set table holds every host's sets; this host needs only those it names.
        plan, table = args.get("plan"), args.get("sets")
        if isinstance(plan, dict) and isinstance(table, dict):
            wanted = plan.get("sets") or {}
            if isinstance(wanted, dict):
                args["sets"] = {i: table[i] for i in set(wanted.values()) if isinstance(i, str) and i in table}
        if not args.get("controller_address"):
            explicit = task_vars.get("host_firewall_controller_address")
            args["controller_address"] = self._templar.template(explicit) if explicit else self._controller
        return args
