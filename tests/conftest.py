"""Fixtures shared by the test modules (plain helpers live in helpers.py)."""

from pathlib import Path

import pytest

from helpers import SHARED


@pytest.fixture
def shared() -> Path:
    assert SHARED.is_dir(), f"shared/ not found at {SHARED} (set CRASH_AGGREGATES_SHARED)"
    return SHARED
