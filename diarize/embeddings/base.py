"""The interface every speaker-embedding backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np


class EmbeddingBackend(ABC):
    """Maps fixed-rate mono speech to L2-normalised speaker vectors.

    ``model_id`` names the weights: vectors from different ``model_id`` are not comparable.
    """

    model_id: str
    dimension: int
    sample_rate: int = 16000

    @abstractmethod
    def embed_windows(
        self,
        samples: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        progress: Callable[[float], None] | None = None,
        gain: float = 1.0,
    ) -> np.ndarray:
        """Embed ``samples[starts[i]:ends[i]] * gain`` for every i; returns float32 ``(n, dimension)``, unit rows.

        ``progress`` (if given) is called with the fraction done after each batch. ``gain`` (see
        :func:`level_gain`) saves the caller a scaled copy of hours of audio.
        """

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """One vector for a whole (single-speaker) signal: the normalised mean of its windows."""
        n = len(samples)
        win = int(1.5 * self.sample_rate)
        hop = int(0.75 * self.sample_rate)
        starts = np.arange(0, max(n - win, 0) + 1, hop, dtype=np.int64)
        ends = np.minimum(starts + win, n)
        vectors = self.embed_windows(samples, starts, ends)
        mean = vectors.mean(axis=0)
        return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)


def level_gain(level_db: float | None, target_db: float | None, max_db: float = 40.0) -> float:
    """Linear gain that brings speech at ``level_db`` to ``target_db`` (at most ``max_db`` either way).

    Speaker embeddings such as GE2E's depend on the input level (its features are not log-compressed): a
    recording 20 dB quieter than the one the thresholds were tuned on counts speakers far worse. 1.0 when
    either level is None.
    """
    if level_db is None or target_db is None:
        return 1.0
    return float(10 ** (np.clip(target_db - level_db, -max_db, max_db) / 20))
