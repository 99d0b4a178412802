"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from .speech import DATA, SKIP_REASON


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-speech folder; tests that need it skip, saying why, when it is absent."""
    if not (DATA / "librispeech").is_dir():
        pytest.skip(SKIP_REASON)
    return DATA
