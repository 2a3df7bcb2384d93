"""Shared fixtures: offline hub, and the optional ../shared/data folder."""

import os
from pathlib import Path

import pytest

# Tests never reach a model hub: tiny models are built from configs into temp folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AFFECTSTORE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real sample data in ../shared/data; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set AFFECTSTORE_SHARED_DATA to its folder)")
    return SHARED_DATA
