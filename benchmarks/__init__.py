"""Benchmark suite of ``diarize``: datasets built from ``../shared/data``, pyannote metrics, baselines.

Run ``python -m benchmarks run --help``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class DataMissing(RuntimeError):
    """The shared speech data (``../shared/data`` or ``$DIARIZE_DATA``) is not there."""


def data_root() -> Path:
    """``$DIARIZE_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("DIARIZE_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def cache_root() -> Path:
    """Where generated audio and references go: ``$DIARIZE_BENCH_CACHE`` or ``benchmarks/cache`` (gitignored)."""
    env = os.environ.get("DIARIZE_BENCH_CACHE")
    return Path(env) if env else REPO_ROOT / "benchmarks" / "cache"


def require_data() -> Path:
    root = data_root()
    if not (root / "librispeech").is_dir() or not (root / "ami-excerpts").is_dir():
        raise DataMissing(f"benchmark data not found at {root} (set DIARIZE_DATA)")
    return root
