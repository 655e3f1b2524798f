"""What the lab benchmarks share: paths, the environment of the repo's Ansible, a timed run."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "tests" / "lab" / "lab.sh"
LAB_INV = ROOT / "tests" / "lab" / "inventory.ini"
ENV = dict(
    os.environ,
    PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
    ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
    ANSIBLE_FORKS=os.environ.get("ANSIBLE_FORKS", "16"),
    ANSIBLE_NOCOLOR="1",
)


def lab_lines() -> list[str]:
    """The lab inventory's host lines (name, address, backend, ...)."""
    return LAB_INV.read_text().split("[lab]")[1].split("\n\n")[0].strip().splitlines()


def timed_playbook(*args) -> float:
    """Wall time of one ansible-playbook run; a failed run ends the benchmark."""
    t = time.perf_counter()
    r = subprocess.run(["ansible-playbook", *map(str, args)], env=ENV, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"ansible-playbook {' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return dt
