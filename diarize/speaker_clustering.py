"""Global clustering of local-turn embeddings (one per chunk, local speaker and turn) into the file's speakers.

Agglomerative clustering (average linkage of cosine distances) cut at a threshold, clusters with
too little clean speech folded into the nearest large one, then every local turn assigned to a centroid, with
the constraint that overlapping turns of one chunk are two different speakers (Hungarian assignment). Two
parameters, both keyed by embedding model in :data:`MODEL_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

from .config import SpeakerClusteringConfig
from .errors import ConfigError
from .local_embeddings import LocalTurns
from .speaker_count import SpeakerBounds


#: Average linkage: the mean cosine distance between two clusters' members. (Centroid linkage on unit vectors
#: measured worse: the mean of many unit vectors shrinks, so big clusters look closer than they are and merged
#: two callers of every call but one at the best threshold: calls 24.7% DER, sim count 92% against 95%.)
LINKAGE = "average"


@dataclass(frozen=True)
class ClusteringDefaults:
    """The clustering parameters measured for one embedding model (``benchmarks/tune.py``, tuning split)."""

    threshold: float  # average-linkage cosine distance
    min_cluster_seconds: float


#: Per embedding model id; the only place these values live.
MODEL_DEFAULTS: dict[str, ClusteringDefaults] = {
    "campplus-zh-en-common": ClusteringDefaults(threshold=0.6, min_cluster_seconds=3.0),
}


def resolve(config: SpeakerClusteringConfig, model_id: str) -> ClusteringDefaults:
    """The config's values, with the model's measured defaults where the config leaves them ``None``."""
    base = MODEL_DEFAULTS.get(model_id)
    if base is None and (config.threshold is None or config.min_cluster_seconds is None):
        raise ConfigError(f"no clustering defaults measured for embedding model {model_id!r}; "
                          f"set speaker_clustering.threshold and min_cluster_seconds (known: {sorted(MODEL_DEFAULTS)})")
    return ClusteringDefaults(
        config.threshold if config.threshold is not None else base.threshold,
        config.min_cluster_seconds if config.min_cluster_seconds is not None else base.min_cluster_seconds,
    )


@dataclass(frozen=True)
class SpeakerAssignment:
    """Per local turn: its speaker (0..k-1, or -1), its cosine to that speaker's centroid, and the margin
    over the next best centroid."""

    labels: np.ndarray
    centroids: np.ndarray
    similarity: np.ndarray
    margin: np.ndarray

    @property
    def num_speakers(self) -> int:
        return len(self.centroids)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cluster_speakers(
    embeddings: np.ndarray,
    clean_seconds: np.ndarray,
    bounds: SpeakerBounds,
    params: ClusteringDefaults,
) -> np.ndarray:
    """Unit centroids ``(k, dim)`` of the speakers among ``embeddings`` (``(n, dim)`` unit rows, each with
    ``clean_seconds`` of speech behind it), with k within ``bounds`` where there are enough embeddings."""
    n = len(embeddings)
    if n == 0:
        return np.zeros((0, embeddings.shape[1]), dtype=np.float32)
    if n == 1:
        return _unit(embeddings[:1].astype(np.float32))
    x = _unit(embeddings.astype(np.float64))
    tree = linkage(x, method=LINKAGE, metric="cosine")
    labels = fcluster(tree, t=params.threshold, criterion="distance") - 1
    # As pyannote bounds its minimum cluster size: in a short file, a tenth of all the clean speech is enough.
    min_seconds = min(params.min_cluster_seconds, 0.1 * float(clean_seconds.sum()))
    large = _large_clusters(labels, clean_seconds, min_seconds)
    if len(large) == 0:  # nothing reaches the size: the largest cluster alone is the speaker
        large = np.array([np.argmax(np.bincount(labels, weights=clean_seconds))])
    k = len(large)
    target = int(np.clip(k, bounds.min_speakers, min(bounds.max_speakers, n)))
    if target > k and labels.max() + 1 >= target:
        # More speakers than the size rule keeps: the voices the threshold already tells apart come first
        # (a quiet speaker), before splitting a talkative one.
        large = np.argsort(-np.bincount(labels, weights=clean_seconds), kind="stable")[:target]
    elif target != k:
        labels, large = _cut_for(tree, clean_seconds, min_seconds, target, n)
    sums = np.zeros((labels.max() + 1, x.shape[1]))
    np.add.at(sums, labels, x)
    return _unit(sums[large]).astype(np.float32)


def _large_clusters(labels: np.ndarray, clean_seconds: np.ndarray, min_seconds: float) -> np.ndarray:
    """Cluster ids with at least ``min_seconds`` of clean speech, largest first."""
    seconds = np.bincount(labels, weights=clean_seconds)
    order = np.argsort(-seconds, kind="stable")
    return order[seconds[order] >= min_seconds]


def _cut_for(tree: np.ndarray, clean_seconds: np.ndarray, min_seconds: float, target: int, n: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """The coarsest cut of the dendrogram with ``target`` large clusters (the ``target`` largest when none has
    exactly that many: a speaker-count hint outranks the size rule)."""
    fallback = None
    for k in range(target, n + 1):
        labels = fcluster(tree, t=k, criterion="maxclust") - 1
        large = _large_clusters(labels, clean_seconds, min_seconds)
        if len(large) >= target:
            return labels, large[:target]
        if fallback is None and labels.max() + 1 >= target:  # centroid linkage may give fewer than asked
            fallback = labels
    labels = fallback if fallback is not None else np.arange(n)
    seconds = np.bincount(labels, weights=clean_seconds)
    return labels, np.argsort(-seconds, kind="stable")[:target]


def assign_turns(turns: LocalTurns, centroids: np.ndarray) -> SpeakerAssignment:
    """Give every local turn a centroid: the nearest, except that turns of different local speakers of one chunk
    that overlap in time get distinct centroids (the best such assignment, while there are enough centroids).
    Turns too short to embed take the label of the nearest embedded turn of their chunk's local speaker."""
    n, k = len(turns), len(centroids)
    labels = np.full(n, -1, dtype=np.int64)
    similarity = np.zeros(n, dtype=np.float32)
    margin = np.zeros(n, dtype=np.float32)
    if k == 0 or n == 0:
        return SpeakerAssignment(labels, centroids, similarity, margin)
    embedded = turns.embedded
    scores = np.nan_to_num(turns.embeddings) @ centroids.T
    labels[embedded] = np.argmax(scores[embedded], axis=1)
    for group in _overlapping_groups(turns, embedded):
        if 1 < len(group) <= k:
            rows, cols = linear_sum_assignment(scores[group], maximize=True)
            labels[group[rows]] = cols
    for i in np.flatnonzero(~embedded):
        peers = np.flatnonzero(embedded & (turns.chunk == turns.chunk[i]) & (turns.speaker == turns.speaker[i]))
        if len(peers):
            gap = np.maximum(turns.first[peers] - turns.last[i], turns.first[i] - turns.last[peers])
            labels[i] = labels[peers[np.argmin(gap)]]
    rows = np.flatnonzero(embedded)
    similarity[rows] = scores[rows, labels[rows]]
    if k > 1:
        others = scores[rows].copy()
        others[np.arange(len(rows)), labels[rows]] = -np.inf
        margin[rows] = similarity[rows] - others.max(axis=1)
    else:
        margin[rows] = 1.0
    return SpeakerAssignment(labels, centroids, similarity, margin)


def _overlapping_groups(turns: LocalTurns, embedded: np.ndarray) -> list[np.ndarray]:
    """Sets of embedded turns of one chunk linked by overlapping in time (different local speakers)."""
    groups = []
    for c in np.unique(turns.chunk[embedded]):
        rows = np.flatnonzero(embedded & (turns.chunk == c))
        if len(rows) < 2:
            continue
        order = rows[np.argsort(turns.first[rows], kind="stable")]
        current, reach = [order[0]], turns.last[order[0]]
        for i in order[1:]:
            if turns.first[i] < reach:
                current.append(i)
                reach = max(reach, turns.last[i])
            else:
                groups.append(np.array(current))
                current, reach = [i], turns.last[i]
        groups.append(np.array(current))
    return [g for g in groups if len(g) > 1]
