"""The collection as Ansible sees it: docs, the plan module in a real playbook, the tarball."""
from __future__ import annotations

import json
import os
import re
import tarfile
import textwrap

from pathlib import Path

from helpers import COLLECTIONS_PATH, ROOT, registered_plan, run


def test_the_collection_under_test_is_the_one_meant():
    """Ansible finds vorstream.firewall where the run says: the source tree, or (make
    test-tarball) a copy installed from the Galaxy tarball, which is no link to the source."""
    r = run(["ansible-galaxy", "collection", "list", "vorstream.firewall", "--format", "json"])
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert list(found) == [str(Path(COLLECTIONS_PATH) / "ansible_collections")], found
    installed = Path(COLLECTIONS_PATH) / "ansible_collections" / "vorstream" / "firewall"
    if installed.is_symlink():
        assert installed.resolve() == ROOT
    else:
        assert (installed / "MANIFEST.json").is_file() and not (installed / "rust" / "target").exists()


def test_the_ansible_core_under_test_is_the_one_meant():
    """make test-ansible-core runs these tests on other releases: they must really run there."""
    r = run(["ansible-playbook", "--version"])
    assert r.returncode == 0, r.stderr
    want = os.environ.get("VORFW_ANSIBLE_CORE") or next(
        l.split("==")[1] for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("ansible-core==")
    )
    assert f"[core {want}]" in r.stdout.splitlines()[0], r.stdout


def test_ansible_doc_plan():
    r = run(["ansible-doc", "vorstream.firewall.plan"])
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "Turns VOR Stream's port matrix" in text
    assert "delegate_to=localhost" in text
    listing = run(["ansible-doc", "-l", "vorstream.firewall"])
    assert listing.returncode == 0
    for module in ("plan", "apply", "verify", "entra_refresh"):
        assert f"vorstream.firewall.{module}" in listing.stdout
    assert "WARNING" not in listing.stderr, listing.stderr  # the binaries stay out of the listing


def playbook(tmp_path, body: str, inventory, *extra):
    pb = tmp_path / "pb.yml"
    pb.write_text(textwrap.dedent(body))
    return run(["ansible-playbook", "-i", inventory, pb, *extra])


def test_plan_module_matches_the_cli(tmp_path, vorfw):
    inv = ROOT / "examples" / "multi-tier.yml"
    r, out = registered_plan(tmp_path, inv, "{'sets': fw.sets, 'plans': fw.plans}")
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(out.read_text())
    want = json.loads(run([vorfw, "plan", "-i", inv, "--format", "json"]).stdout)
    assert got == {"sets": want["sets"], "plans": want["hosts"]}
    # Each peer set once: the hosts name them, and every name is in the table.
    used = {i for h in got["plans"].values() for i in h["sets"].values()}
    assert used == set(got["sets"]) and len(got["plans"]) > 5


def test_plan_module_fails_before_touching_hosts(tmp_path):
    inv = tmp_path / "hosts.ini"
    inv.write_text("[web]\nweb1 ansible_host=10.60.0.1\n[all:vars]\nhost_firewall_admin_sources='[\"10.0.0.0/40\"]'\n")
    r = playbook(
        tmp_path,
        """
        - hosts: all
          gather_facts: false
          tasks:
            - vorstream.firewall.plan:
              run_once: true
              delegate_to: localhost
        """,
        inv,
    )
    assert r.returncode != 0
    assert "host web1: host_firewall_admin_sources: malformed CIDR '10.0.0.0/40'" in r.stdout


def test_plan_module_protocol_directly(tmp_path):
    """The binary alone: args file in, exactly one JSON object out, never a panic."""
    binary = ROOT / "plugins" / "modules" / "__bin__" / "plan_x86_64"
    cases = {
        "not json": "{",
        "unknown arg": json.dumps({"bogus": 1, "_ansible_check_mode": True}),
        "no inventory": json.dumps({}),
    }
    for name, text in cases.items():
        args = tmp_path / "args"
        args.write_text(text)
        r = run([binary, args])
        assert r.returncode == 1, name
        res = json.loads(r.stdout)
        assert res["failed"] is True and res["msg"], name
        assert r.stderr == "", name
    r = run([binary, tmp_path / "missing"])
    assert json.loads(r.stdout)["failed"] is True


def test_galaxy_tarball_ships_binaries_and_not_rust_target(tmp_path):
    r = run(["ansible-galaxy", "collection", "build", "--force", "--output-path", tmp_path, ROOT])
    assert r.returncode == 0, r.stderr
    tarball = next(tmp_path.glob("vorstream-firewall-*.tar.gz"))
    names = tarfile.open(tarball).getnames()
    for arch in ("x86_64", "aarch64"):
        for module in ("plan", "apply", "verify"):
            assert f"plugins/modules/__bin__/{module}_{arch}" in names
        assert f"roles/entra_egress/files/vorfw-entra_{arch}" in names
    assert not any(n.startswith("rust/target") for n in names)
    assert not any(n.startswith(".venv") for n in names)
    assert "data/port_matrix.json" in names and "plugins/action/plan.py" in names
    assert "playbooks/entra_refresh.yml" in names


def test_entra_egress_role_arguments_are_validated(tmp_path):
    """A wrong value fails at the role's argument check, before anything runs on the host."""
    r = playbook(tmp_path, """
        - hosts: localhost
          gather_facts: false
          roles:
            - role: vorstream.firewall.entra_egress
              vars:
                entra_egress_mode: hourly
        """, "localhost,", "-c", "local")
    assert r.returncode != 0
    assert "entra_egress_mode" in r.stdout and "hourly" in r.stdout, r.stdout[-2000:]


def test_module_binaries_carry_no_tls_stack():
    """The firewall modules are copied per task per host: no TLS or async runtime inside.
    Crates leave their registry paths (panic locations) in a binary: the refresher, which does
    carry them, shows the check can see them."""
    crates = re.compile(rb"(tokio|rustls|reqwest)-\d+\.\d+")
    refresher = (ROOT / "roles" / "entra_egress" / "files" / "vorfw-entra_x86_64").read_bytes()
    assert {m.group(1) for m in crates.finditer(refresher)} == {b"tokio", b"rustls", b"reqwest"}
    for module in ("plan", "apply", "verify"):
        data = (ROOT / "plugins" / "modules" / "__bin__" / f"{module}_x86_64").read_bytes()
        found = sorted({m.group(0).decode() for m in crates.finditer(data)})
        assert not found, f"{module} links {found}"


def test_plan_module_templates_the_host_variables_that_hold_templates(tmp_path):
    """The action plugin passes plain values as they are and templates the others the way
    hostvars does (the host's own variables, then the play's): a value given as a template
    reaches the planner resolved, on one host and across a group."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        textwrap.dedent(
            """
            all:
              vars:
                corp_users: 192.0.2.0/24
                host_firewall_user_sources: ["{{ corp_users }}"]
              children:
                web:
                  hosts:
                    web1: {ansible_host: 10.60.0.1}
                    web2: {ansible_host: 10.60.0.2, host_firewall_address: "10.60.0.{{ 40 + 2 }}"}
            """
        )
    )
    r, out = registered_plan(tmp_path, inv, "{'sets': fw.sets, 'plans': fw.plans}")
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(out.read_text())
    assert got["plans"]["web1"]["addresses"] == ["10.60.0.1"]
    assert got["plans"]["web2"]["addresses"] == ["10.60.0.42"]
    for h in ("web1", "web2"):
        users = got["sets"][got["plans"][h]["sets"]["a-user"]]
        assert users["nets"] == ["192.0.2.0/24"], (h, users)
