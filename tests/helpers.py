"""Shared helpers: paths, the pinned Ansible of the repo's venv, running commands."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# VORFW_BIN: another build of vorfw to test (a debug build, say); default the installed one.
VORFW = Path(os.environ.get("VORFW_BIN") or ROOT / "bin" / "vorfw")


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{VENV_BIN}:{e.get('PATH', '')}"
    e["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / "build" / "collections")
    e["ANSIBLE_NOCOLOR"] = "1"
    e.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    e.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
    return e


def run(args, check=False, input=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env(), check=check, input=input, cwd=cwd
    )


