"""The weekly refresher runs as root from a unit the role writes: no role variable can add a
variable, a word or a line to it, and the proxy's password is in no unit and no result."""
from __future__ import annotations

import json
import re
import subprocess

import yaml

from helpers import ROOT, run

ROLE = ROOT / "roles" / "entra_egress"
ROLE_VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def render_unit(tmp_path, host_args: list[str]) -> str:
    out = tmp_path / "unit.service"
    pb = tmp_path / "pb.yml"
    pb.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"entra_egress_binary": "/usr/local/libexec/vorstream-firewall/vorfw-entra",
                 "entra_egress_state_dir": "/var/lib/vorstream-firewall/entra",
                 "entra_egress_env_file": "/var/lib/vorstream-firewall/entra/refresh.env",
                 "entra_egress_host_args": host_args,
                 "_entra_egress_write_paths": ROLE_VARS["_entra_egress_write_paths"]},
        "tasks": [{"ansible.builtin.template": {"src": str(ROLE / "templates" / "vorstream-entra-refresh.service.j2"),
                                                "dest": str(out)}}],
    }]))
    r = run(["ansible-playbook", pb])
    assert r.returncode == 0, r.stdout + r.stderr
    return out.read_text()


def test_values_stay_one_word_each(tmp_path):
    hostile = "http://x/a b%i$HOME\\\"q' SSL_CERT_FILE=/var/tmp/ca.pem"
    unit = render_unit(tmp_path, ["--url", hostile])
    [exec_line] = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
    assert '"http://x/a b%%i$$HOME\\\\\\"q\' SSL_CERT_FILE=/var/tmp/ca.pem"' in exec_line, exec_line
    assert "Environment=" not in unit.replace("EnvironmentFile=", "")
    # systemd itself reads it back as exactly these words.
    r = subprocess.run(["systemd-analyze", "verify", tmp_path / "unit.service"], capture_output=True, text=True, check=False)
    assert "is not executable" in r.stderr or r.returncode == 0, r.stderr
    assert "Unknown" not in r.stderr and "Failed to parse" not in r.stderr, r.stderr


def test_bad_proxy_and_arguments_fail_before_anything_runs(tmp_path):
    for var, value in [("entra_egress_proxy", "http://u:p@proxy:3128 SSL_CERT_FILE=/var/tmp/ca.pem"),
                       ("entra_egress_extra_args", ["--grace", "14d\nExecStartPre=/bin/sh -c id"]),
                       ("entra_egress_url", "https://example.invalid/x\nExecStartPre=/bin/id")]:
        pb = tmp_path / "pb.yml"
        pb.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                                       "roles": [{"role": "vorstream.firewall.entra_egress", "vars": {var: value}}]}]))
        r = run(["ansible-playbook", pb])
        assert r.returncode != 0, var
        assert "host localhost: entra_egress_proxy must be an http:// or https:// URL" in r.stdout, r.stdout
        assert "Find the host's CPU architecture" not in r.stdout, var
        if var == "entra_egress_proxy":
            assert "u:p@" not in r.stdout


def test_the_proxy_reaches_no_command_line():
    vars_text = (ROLE / "vars" / "main.yml").read_text()
    assert "--proxy" not in vars_text
    tasks = (ROLE / "tasks" / "main.yml").read_text()
    assert 'environment: "{{ _entra_egress_environment }}"' in tasks and 'mode: "0600"' in tasks


def test_the_unit_is_hardened(tmp_path):
    unit = render_unit(tmp_path, ["--cloud", "Public"])
    for want in ["ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                 "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_CHOWN CAP_FOWNER",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
                 "SystemCallFilter=@system-service", "UMask=0077", "RestrictNamespaces=yes"]:
        assert want + "\n" in unit, want
    # systemd's own score: 9.0 (UNSAFE) with the three settings the unit had before; now OK.
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", tmp_path / "unit.service"],
                       capture_output=True, text=True, check=False)
    level = float(re.search(r"Overall exposure level for unit.service: ([\d.]+)", r.stdout).group(1))
    assert level <= 3.0, r.stdout[-3000:]


def test_the_unit_may_write_what_the_host_side_writes(tmp_path):
    """ReadWritePaths= covers every absolute path the converge code writes by default (the
    Paths defaults and constants of the host crates), and nothing is read-write beyond those."""
    unit = render_unit(tmp_path, ["--cloud", "Public"])
    writable = [p.lstrip("-") for p in re.search(r"^ReadWritePaths=(.*)$", unit, re.M).group(1).split()]
    crates = ROOT / "rust" / "crates"
    written = set()
    for f in [crates / "host/src/lib.rs", crates / "ufw/src/apply.rs", crates / "nftables/src/apply.rs",
              crates / "entra/src/config.rs"]:
        text = f.read_text().split("#[cfg(test)]")[0]
        written |= set(re.findall(r'"(/(?:etc|var|run)/[^"]+)"', text))
    # Read, not written: the resolvers, ufw's boot link (checked only).
    read_only = {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf",
                 "/etc/systemd/system/multi-user.target.wants/ufw.service"}
    for path in sorted(written - read_only):
        assert any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable), (path, writable)
    assert "/etc/firewalld" in writable  # firewall-offline-cmd, when firewalld is not running


def render_oidc(tmp_path, extra: dict) -> tuple[str, list]:
    """The OIDC providers' unit and the controller's discover options, from the role's own
    defaults and vars (extra vars on top, as -e gives them)."""
    unit, opts = tmp_path / "oidc.service", tmp_path / "controller-options.json"
    pb = tmp_path / "pb.yml"
    pb.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"ansible.builtin.include_vars": str(ROLE / "defaults" / "main.yml")},
            {"ansible.builtin.include_vars": str(ROLE / "vars" / "main.yml")},
            {"ansible.builtin.template": {"src": str(ROLE / "templates" / "vorstream-oidc-refresh.service.j2"),
                                          "dest": str(unit)}},
            {"ansible.builtin.copy": {"content": "{{ _entra_egress_controller_oidc_options | to_json }}",
                                      "dest": str(opts)}},
        ],
    }]))
    r = run(["ansible-playbook", pb, "-e", json.dumps(extra)])
    assert r.returncode == 0, r.stdout + r.stderr
    return unit.read_text(), json.loads(opts.read_text())


def test_controller_mode_oidc_timer_reads_the_pushed_documents(tmp_path):
    """Controller mode: the OIDC timer stays, resolving the pushed documents (--discovery-dir)
    instead of fetching; the controller's discover gets the CA bundle and its own options only."""
    providers = [{"issuer": "https://idp.example.test", "name": "lab"}]
    unit, opts = render_oidc(tmp_path, {"entra_egress_mode": "controller", "entra_egress_oidc_providers": providers,
                                        "entra_egress_ca_file": "/etc/pki/corp.pem",
                                        "entra_egress_oidc_args": ["--grace", "2h"],
                                        "entra_egress_controller_oidc_args": ["--connect-to", "idp.example.test:192.0.2.1"]})
    [exec_line] = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
    assert '"refresh" "--if-due"' in exec_line, exec_line
    assert exec_line.endswith('"--grace" "2h" "--discovery-dir" "/var/lib/vorstream-firewall/oidc-discovery"'), exec_line
    assert opts == ["--ca-bundle", "/etc/pki/corp.pem", "--connect-to", "idp.example.test:192.0.2.1"], opts

    unit, opts = render_oidc(tmp_path, {"entra_egress_oidc_providers": providers})
    [exec_line] = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
    assert "--discovery-dir" not in exec_line and opts == [], exec_line
