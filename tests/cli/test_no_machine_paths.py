"""Committed files carry no path of the machine they were made on: not the checkout's absolute
path (a generated inventory once embedded it), not its parent, not a home directory, not a
pytest or mktemp directory. Generated files are written with paths relative to the checkout or
to the lab's state directory (/var/lib/vorlab, the same on every machine)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from helpers import ROOT

MACHINE = re.compile(
    r"/(?:home|Users)/[a-z_][a-z0-9_-]*/"      # a home directory
    r"|/tmp/(?:pytest-of-|tmp[a-z0-9_]{6,}|ansible-test-)"  # a test run's temporary directory
)


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    out = []
    for n in names.decode().split("\0"):
        p = ROOT / n
        if n and p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            if b"\0" not in data[:8192]:
                out.append(p)
    return out


def test_committed_files_name_no_path_of_this_machine():
    files = tracked_text_files()
    assert len(files) > 100, f"only {len(files)} tracked text files: is this a git checkout?"
    here = [str(ROOT), str(ROOT.parent) + "/", str(Path.home()) + "/"]
    found = []
    for p in files:
        text = p.read_text(errors="replace")
        for i, line in enumerate(text.splitlines(), 1):
            if any(h in line for h in here if h not in ("/", "//", "/root/")) or MACHINE.search(line):
                found.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:160]}")
    assert not found, "machine paths in committed files:\n" + "\n".join(found)


def test_the_check_finds_a_machine_path():
    # The patterns themselves: what a generated file written on this machine would hold.
    # (Written in pieces, so that this file does not hold what it looks for.)
    assert MACHINE.search("ansible_ssh_private_key_file=" + "/home" + "/alice/.ssh/id")
    assert MACHINE.search("entra_egress_file=" + "/tmp" + "/pytest-of-root/pytest-3/feed.json")
    assert not MACHINE.search("ansible_ssh_private_key_file=/var/lib/vorlab/id_ed25519")
