"""How many speakers: NME-SC auto-tuned eigengap on a pruned cosine affinity, with explicit bounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh

from .errors import ConfigError


@dataclass(frozen=True)
class SpeakerBounds:
    """The range of speaker counts the clustering may return."""

    min_speakers: int
    max_speakers: int

    @property
    def exact(self) -> bool:
        return self.min_speakers == self.max_speakers


def speaker_bounds(
    duration: float,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    uncapped_limit: int = 20,
) -> SpeakerBounds:
    """Resolve the user's hints; without ``max_speakers`` the cap follows the audio duration.

    As with hosted APIs: no cap up to 2 minutes (``uncapped_limit`` in practice), 10 up to 10 minutes, 30 beyond.
    """
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if num_speakers is not None:
        if (min_speakers is not None and min_speakers != num_speakers) or (
            max_speakers is not None and max_speakers != num_speakers
        ):
            raise ConfigError("give either num_speakers or min_speakers/max_speakers, not conflicting both")
        return SpeakerBounds(num_speakers, num_speakers)
    if max_speakers is None:
        max_speakers = uncapped_limit if duration <= 120 else 10 if duration <= 600 else 30
        max_speakers = max(max_speakers, min_speakers or 1)
    low = min_speakers or 1
    if low > max_speakers:
        raise ConfigError(f"min_speakers ({low}) is greater than max_speakers ({max_speakers})")
    return SpeakerBounds(low, max_speakers)


def pruned_affinity(similarity: np.ndarray, neighbours: int) -> np.ndarray:
    """Keep each row's ``neighbours`` strongest links as 1, drop the rest, then symmetrise (NME-SC)."""
    n = len(similarity)
    keep = min(max(neighbours, 1), n)
    order = np.argpartition(-similarity, keep - 1, axis=1)[:, :keep]
    binary = np.zeros_like(similarity)
    np.put_along_axis(binary, order, 1.0, axis=1)
    return (binary + binary.T) / 2


def laplacian(affinity: np.ndarray) -> np.ndarray:
    """Unnormalised graph Laplacian ``D - A``."""
    return np.diag(affinity.sum(axis=1)) - affinity


def spectral_embedding(affinity: np.ndarray, num_clusters: int) -> np.ndarray:
    """Rows of the ``num_clusters`` Laplacian eigenvectors with the smallest eigenvalues."""
    _, vectors = eigh(laplacian(affinity), subset_by_index=[0, num_clusters - 1])
    return vectors


@dataclass(frozen=True)
class CountEstimate:
    """The estimated count, the pruning that gave it, and that pruning's affinity matrix."""

    num_speakers: int
    neighbours: int
    affinity: np.ndarray


def estimate_speaker_count(
    embeddings: np.ndarray,
    bounds: SpeakerBounds,
    p_grid: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5),
) -> CountEstimate:
    """Auto-tuned eigengap count (Park et al., NME-SC 2019) within ``bounds``.

    For each pruning level the largest normalised eigengap gives a count; the level with the best
    neighbours/gap ratio wins. The eigengap is only searched from 2 up: telling one speaker from
    several is left to the centroid merge that follows clustering.
    """
    n = len(embeddings)
    similarity = embeddings @ embeddings.T
    low = max(bounds.min_speakers, 2)
    high = min(bounds.max_speakers, n - 1)
    best: tuple[float, int, int, np.ndarray] | None = None
    for neighbours in sorted({max(2, int(round(p * n))) for p in p_grid}):
        affinity = pruned_affinity(similarity, neighbours)
        values = eigh(laplacian(affinity), eigvals_only=True)
        gaps = np.diff(values[: high + 1])
        if bounds.exact:
            count = bounds.min_speakers
            gap = gaps[count - 1] if count - 1 < len(gaps) else 0.0
        else:
            window = gaps[low - 1 : high]
            count = low + int(np.argmax(window)) if len(window) else low
            gap = window.max() if len(window) else 0.0
        ratio = neighbours / max(gap / max(values[-1], 1e-9), 1e-9)  # values[-1] is the largest
        if best is None or ratio < best[0]:
            best = (ratio, count, neighbours, affinity)
    assert best is not None
    return CountEstimate(best[1], best[2], best[3])
