# -*- coding: utf-8 -*-
# Copyright: vorstream.firewall contributors
# Apache License 2.0
"""Action plugin for vorstream.firewall.entra_refresh: run the installed refresher on the host.

The refresher (vorfw-entra, with its HTTPS stack) is installed once by the entra_egress role and
run by the weekly timer; this plugin runs the same command for a playbook run and turns its JSON
report into changed, a diff of the effective prefix list, and a failure that names the host.
"""
from __future__ import annotations

import json
import shlex

from ansible.module_utils.json_utils import _filter_non_json_lines
from ansible.plugins.action import ActionBase

MISSING = "__VORFW_ENTRA_MISSING__"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("binary", "state_dir", "args"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        a = self._task.args
        host = (task_vars or {}).get("inventory_hostname", "?")
        binary = a.get("binary") or "/usr/local/libexec/vorstream-firewall/vorfw-entra"
        state_dir = a.get("state_dir") or "/var/lib/vorstream-firewall/entra"
        extra = a.get("args") or []
        if not isinstance(extra, list):
            return dict(result, failed=True, msg="args must be a list of strings, got %r" % (extra,))
        check = bool(self._task.check_mode)
        argv = [binary, "--state-dir", state_dir, "apply", "--format", "json"]
        argv += ["--check"] if check else []
        argv += [str(x) for x in extra]
        # The task's environment (the role passes the proxy there, never in argv or the result).
        env = self._compute_environment_string()
        cmd = "if [ ! -x %s ]; then echo %s; exit 0; fi; %s exec %s" % (
            shlex.quote(binary), MISSING, env, " ".join(shlex.quote(x) for x in argv))
        res = self._low_level_execute_command(cmd, sudoable=True)
        out, err, rc = res.get("stdout", ""), res.get("stderr", ""), res.get("rc")
        result["cmd"] = argv
        if out.strip() == MISSING:
            if check:
                return dict(result, changed=True, msg="the refresher is not installed yet; a real run installs it and refreshes")
            return dict(result, failed=True, msg="host %s: the refresher %s is missing (run the entra_egress role)" % (host, binary))
        if rc != 0:
            reason = "\n".join(l for l in err.strip().splitlines() if l.strip()) or out.strip() or "exit code %s" % rc
            return dict(result, failed=True, rc=rc, stderr=err,
                        msg="host %s: Entra ID refresh failed; the firewall and the saved list are unchanged: %s" % (host, reason))
        try:
            # A tty (become, ssh) may merge stderr lines into stdout: keep the JSON document.
            doc = json.loads(_filter_non_json_lines(out)[0])
        except ValueError:
            return dict(result, failed=True, stdout=out, stderr=err, msg="host %s: the refresher printed no JSON report (rc %s)" % (host, rc))
        diff = doc.get("diff") or {}
        in_grace = diff.get("in_grace") or []
        result.update(
            changed=bool(doc.get("changed")),
            summary=doc.get("summary"),
            msg=doc.get("summary"),
            change_number=doc.get("change_number"),
            file_name=doc.get("file_name"),
            source=doc.get("source"),
            prefixes=doc.get("prefixes"),
            added=[str(p) for p in (diff.get("added") or []) + (diff.get("restored") or [])],
            removed=[str(p) for p in diff.get("expired") or []],
            in_grace=in_grace,
            held=doc.get("held") or [],
            warnings=list(diff.get("warnings") or []),
            firewall=doc.get("firewall"),
        )
        fw = doc.get("firewall") or {}
        for w in (fw.get("detail") or {}).get("warnings") or []:
            result["warnings"].append(w)
        if not result["warnings"]:
            del result["warnings"]
        if self._task.diff:
            before = doc.get("previous_effective") or []
            after = doc.get("effective") or []
            result["diff"] = [{
                "before": "".join(p + "\n" for p in before),
                "after": "".join(p + "\n" for p in after),
                "before_header": "%s: Entra ID prefixes in force" % host,
                "after_header": "%s: Entra ID prefixes after the refresh" % host,
            }]
            detail = fw.get("detail") or {}
            if fw.get("changed") and "before" in detail:
                result["diff"].append({
                    "before": detail.get("before", ""), "after": detail.get("after", ""),
                    "before_header": "%s: firewall (%s)" % (host, detail.get("backend", "")),
                    "after_header": "%s: firewall with the new list" % host,
                })
        return result
