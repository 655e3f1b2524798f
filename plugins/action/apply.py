# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Action plugin for vorstream.firewall.apply.

Besides picking the binary for the target's CPU, it finds the controller's address as the host
sees it (the client end of the SSH connection), so that a host whose
host_firewall_management_sources is unset keeps SSH open from the controller: a run can never
cut Ansible off. One extra round trip, made without become. It also sends the host only the
peer sets its plan names.

With commit-confirm (confirm_timeout), a change comes back with a ticket: the plugin drops the
connection it has, reaches the host over a new one and confirms. If no new connection gets
through before the deadline, the host rolls the change back by itself; the plugin then waits
for the deadline, asks the host over another new connection how it ended, and fails naming
the host.
"""
from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.vorstream.firewall.plugins.plugin_utils.binary_module import BinaryModuleAction

# Seconds between attempts to reach the host, and how long after the deadline to keep asking.
RETRY = 2
AFTER_DEADLINE = 30
# A confirm that used more than this share of the timeout gets a warning: reaching a host over
# a new connection and running the module takes many seconds when the controller is busy
# (measured in the lab: 3 to 4 s alone, 7 to 25 s with 12 hosts at once on 2 cores).
SLACK = 0.5


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

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        ticket = result.pop("confirm", None)
        if not ticket or result.get("failed"):
            return result
        return self._confirm(result, ticket, task_vars)

    def _settle(self, key, token, task_vars):
        """Call the module over a new connection; (result, None) or (None, why it failed)."""
        try:
            self._connection.reset()
            res = self._execute_module(module_name=self._module_name, module_args={key: token}, task_vars=task_vars)
        except AnsibleError as e:
            return None, " ".join(str(e).split())
        if res.get("unreachable"):
            return None, " ".join(str(res.get("msg", "unreachable")).split())
        return res, None

    def _confirm(self, result, ticket, task_vars):
        host = task_vars.get("inventory_hostname", "?")
        token, timeout = ticket["token"], int(ticket["timeout"])
        deadline = time.monotonic() + timeout
        # The host's watchdog runs the module binary the apply was sent as: the confirm gets a
        # temporary directory of its own (the old one is removed, over the old connection).
        self._remove_tmp_path(self._connection._shell.tmpdir)
        self._connection._shell.tmpdir = None
        why, state, started, attempts = None, None, time.monotonic(), 0
        while time.monotonic() < deadline:
            attempts += 1
            res, why = self._settle("confirm", token, task_vars)
            if res is not None and not res.get("failed"):
                # How long reaching the host again took: what the timeout must leave room for.
                took = time.monotonic() - started
                result.update(confirmed=True, confirm_seconds=round(took, 1), confirm_attempts=attempts)
                if took > timeout * SLACK:
                    result.setdefault("warnings", []).append(
                        "host %s: commit-confirm took %.1f s of its %d s: a busier run (more forks, a "
                        "slower network) may not confirm in time and roll back; raise "
                        "host_firewall_confirm_timeout" % (host, took, timeout)
                    )
                return result
            if res is not None:
                state = res.get("state") or {}
                if state.get("state") in (None, "pending"):
                    # Reached, but the confirm itself failed: say so as it is.
                    result.update(failed=True, msg="host %s: commit-confirm: %s" % (host, res.get("msg")))
                    return result
                break  # reached only after the host settled it (rolled back)
            time.sleep(min(RETRY, max(0, deadline - time.monotonic())))
        # Not confirmed: the host rolls back at the deadline. Ask it, over a new connection,
        # once it should have.
        until = deadline + AFTER_DEADLINE
        while state is None and time.monotonic() < until:
            time.sleep(RETRY)
            res, _why = self._settle("confirm_status", token, task_vars)
            if res is not None and not res.get("failed") and res.get("state") != "pending":
                state = res
        msg = "host %s: commit-confirm: no new connection confirmed the change within %d s" % (host, timeout)
        msg += " (the new rules cut this controller off? last error: %s); " % (
            why or "the host was reached only after its deadline"
        )
        rolled_back = bool(state and state.get("state") == "rolled back")
        if state is None:
            msg += "the host rolls it back by itself at its deadline, but it is still unreachable"
        elif rolled_back:
            msg += "the host rolled it back at %s and is reachable again" % state.get("at")
        else:
            msg += "the host reports %s: %s" % (state.get("state"), "; ".join(state.get("detail") or []))
        result.update(failed=True, rolled_back=rolled_back, msg=msg)
        if rolled_back:
            result["changed"] = False
        return result
