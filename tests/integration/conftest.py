"""The namespace lab as a session fixture: up (fresh) before the first lab test, down after."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labkit import lab  # noqa: E402


@pytest.fixture(scope="session")
def lab_up():
    lab("up", "--fresh")
    yield
    lab("down")
