"""Shared helpers: paths, the pinned Ansible of the repo's venv, running commands."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# VORFW_ANSIBLE_BIN: the bin directory of another ansible-core to run the playbooks with (make
# test-ansible-core: the oldest release meta/runtime.yml admits and the newest one here).
ANSIBLE_BIN = Path(os.environ.get("VORFW_ANSIBLE_BIN") or VENV_BIN)
# VORFW_BIN: another build of vorfw to test (a debug build, say); default the installed one.
VORFW = Path(os.environ.get("VORFW_BIN") or ROOT / "bin" / "vorfw")


COLLECTIONS_PATH = os.environ.get("VORFW_COLLECTIONS_PATH") or str(ROOT / "build" / "collections")


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{ANSIBLE_BIN}:{VENV_BIN}:{e.get('PATH', '')}"
    # The source tree (linked into build/collections), or a collection installed from the
    # Galaxy tarball (make test-tarball sets VORFW_COLLECTIONS_PATH).
    e["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_PATH
    e["ANSIBLE_NOCOLOR"] = "1"
    e.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    e.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
    return e


def run(args, check=False, input=None, cwd=None, timeout=None, extra_env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env={**env(), **(extra_env or {})}, check=check,
        input=input, cwd=cwd, timeout=timeout,
    )


def clean_copy(dest: Path) -> Path:
    """The collection as a fresh clone has it (the files git tracks, plus new files .gitignore
    does not exclude, so that uncommitted work is checked too; never rust/target, .venv, build
    or bin), copied to dest/ansible_collections/vorstream/firewall, where ansible-test and
    ansible-lint want a collection. Returns that directory."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    coll = dest / "ansible_collections" / "vorstream" / "firewall"
    copied = 0
    for rel in filter(None, listed.split("\0")):
        src, dst = ROOT / rel, coll / rel
        if src.is_symlink() or not src.is_file():
            continue  # deleted in the work tree, or a link to outside (.venv)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)  # with its mode: the shebang test reads execute bits
        copied += 1
    assert copied > 100 and (coll / "galaxy.yml").is_file(), f"only {copied} files listed by git"
    return coll


def registered_plan(tmp_path, inventory, content="fw", *extra) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the plan module in ansible-playbook as the role does (once, on the controller, its
    result registered as `fw`) and save the Jinja expression `content` of it as JSON."""
    out = tmp_path / "registered.json"
    pb = tmp_path / "plan.yml"
    pb.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - vorstream.firewall.plan:\n      run_once: true\n      delegate_to: localhost\n      register: fw\n"
        "    - ansible.builtin.copy:\n"
        f"        content: \"{{{{ {content} | to_json }}}}\"\n        dest: {out}\n"
        "      run_once: true\n      delegate_to: localhost\n"
    )
    return run(["ansible-playbook", "-i", inventory, pb, *extra]), out


# Debian's chromium (make setup installs it); Playwright drives it and never downloads a browser.
CHROMIUM = Path(os.environ.get("VORFW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")


@contextlib.contextmanager
def browser_page(viewport=(1400, 1000)):
    """A page of headless Chromium; `page.errors` collects console errors and uncaught
    exceptions, `page.dialogs` every alert/confirm/prompt (dismissed)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium (make setup does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.errors, page.dialogs = [], []
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
            yield page
        finally:
            browser.close()
