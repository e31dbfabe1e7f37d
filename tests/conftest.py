"""Shared fixtures: paths to the repository's test data and to the project's shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The real crops shipped in ``tests/data`` (see its README for provenance)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's shared real data folder (``$MRISR_SHARED_DATA`` or ``../shared/data``)."""
    p = Path(os.environ.get("MRISR_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not p.is_dir():
        pytest.skip(f"shared data folder not found at {p}; set MRISR_SHARED_DATA")
    return p
