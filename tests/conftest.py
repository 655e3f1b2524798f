"""Shared fixtures: the built binaries."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import VORFW  # noqa: E402


@pytest.fixture(scope="session")
def vorfw() -> Path:
    if not VORFW.exists():
        pytest.fail("bin/vorfw is missing: run `make build` first")
    return VORFW
