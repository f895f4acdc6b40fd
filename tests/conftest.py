"""Shared pytest fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the read-only real recordings in ``../shared/data`` (skips when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not present: real-data test needs {SHARED_DATA}")
    return SHARED_DATA
