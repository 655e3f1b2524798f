# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Thin dispatch from an action plugin to the collection's Rust module binaries.

Each module is built (static musl) once per CPU architecture into
``plugins/modules/__bin__/<module>_<arch>``. The action plugin picks the binary for the target's
architecture and runs it through Ansible's normal binary-module machinery (args file in,
one JSON object out), so become, check mode, diff mode and temp-dir handling are Ansible's own.
"""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# uname -m / ansible_architecture spellings -> the architecture suffix of our binaries.
ARCHES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
}

BIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "modules", "__bin__")


def binary_name(module: str, arch: str) -> str:
    suffix = ARCHES.get(arch)
    if suffix is None:
        raise AnsibleActionFail(
            "vorstream.firewall.%s: no binary for CPU architecture %r (supported: %s)"
            % (module, arch, ", ".join(sorted(set(ARCHES.values()))))
        )
    path = os.path.join(BIN_DIR, "%s_%s" % (module, suffix))
    if not os.path.isfile(path):
        raise AnsibleActionFail(
            "vorstream.firewall.%s: the module binary %s is missing; run `make build` in the "
            "collection's source tree, or install a built collection tarball" % (module, path)
        )
    return "vorstream.firewall.__bin__.%s_%s" % (module, suffix)


class BinaryModuleAction(ActionBase):
    """Base class: subclasses set MODULE and may override module_args()."""

    MODULE = ""

    def module_args(self, task_vars):
        return dict(self._task.args)

    def target_arch(self, task_vars):
        # Gathered facts describe the inventory host, not a delegate_to target.
        if not self._task.delegate_to:
            facts = task_vars.get("ansible_facts") or {}
            arch = facts.get("architecture") or task_vars.get("ansible_architecture")
            if arch:
                return arch
        res = self._low_level_execute_command("uname -m", sudoable=False)
        if res.get("rc") != 0:
            raise AnsibleActionFail("cannot determine the target's CPU architecture: %s" % res.get("stderr", "").strip())
        return res["stdout"].strip()

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        self._module_name = binary_name(self.MODULE, self.target_arch(task_vars))
        args = self.module_args(task_vars)
        result.update(self._execute_module(module_name=self._module_name, module_args=args, task_vars=task_vars))
        return result
