"""Fixtures of the cloud tests: the cloud collections from the pinned `ansible` package
(build/cloud-collections, made by `make setup-cloud`) and a local EC2 emulator (moto)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import ROOT, VENV_BIN  # noqa: E402

CLOUD_COLLECTIONS = ROOT / "build" / "cloud-collections"
MOTO_SERVER = Path(__file__).resolve().parent / "moto_server.py"
# The collection's own filters, importable as Ansible imports them (make link).
sys.path.insert(0, str(ROOT / "build" / "collections"))


@pytest.fixture(scope="session")
def cloud_collections() -> Path:
    for c in ("amazon/aws", "azure/azcollection"):
        if not (CLOUD_COLLECTIONS / "ansible_collections" / c / "MANIFEST.json").is_file():
            pytest.fail(f"{CLOUD_COLLECTIONS}/ansible_collections/{c} is missing: run `make setup-cloud` first")
    return CLOUD_COLLECTIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto's server on 127.0.0.1 only, on a free port, started by tests/cloud/moto_server.py
    (moto's own server with its EC2 defects that these tests meet corrected); its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([str(VENV_BIN / "python"), str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _i in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"moto_server exited: {log.read_text()}")
                time.sleep(0.1)
        else:
            pytest.fail(f"moto_server did not listen on {url}: {log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
