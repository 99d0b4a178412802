"""Global clustering of local-speaker embeddings (one per chunk and local speaker) into the file's speakers.

Agglomerative clustering (centroid linkage on unit vectors) cut at a cosine-distance threshold, clusters with
too little clean speech folded into the nearest large one, then every local speaker assigned to a centroid,
with the constraint that two local speakers of one chunk are two different speakers (Hungarian assignment
per chunk). Two parameters, both keyed by embedding model in :data:`MODEL_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

from .config import SpeakerClusteringConfig
from .errors import ConfigError
from .speaker_count import SpeakerBounds


@dataclass(frozen=True)
class ClusteringDefaults:
    """The clustering parameters measured for one embedding model (``benchmarks/tune.py``, tuning split)."""

    threshold: float
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
    """``labels[c, s]``: the speaker (0..k-1) of local speaker ``s`` of chunk ``c``, or -1 (silent there);
    ``similarity[c, s]``: its cosine to that speaker's centroid; ``margin[c, s]``: over the next best centroid."""

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
    tree = linkage(x, method="centroid", metric="euclidean")
    # On unit vectors, squared Euclidean distance = 2 * cosine distance.
    labels = fcluster(tree, t=float(np.sqrt(2 * params.threshold)), criterion="distance") - 1
    large = _large_clusters(labels, clean_seconds, params.min_cluster_seconds)
    if len(large) == 0:  # nothing reaches the size: the largest cluster alone is the speaker
        large = np.array([np.argmax(np.bincount(labels, weights=clean_seconds))])
    k = len(large)
    target = int(np.clip(k, bounds.min_speakers, min(bounds.max_speakers, n)))
    if target != k:
        labels, large = _cut_for(tree, clean_seconds, params.min_cluster_seconds, target, n)
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


def assign_local_speakers(embeddings: np.ndarray, centroids: np.ndarray) -> SpeakerAssignment:
    """Give every local speaker (``embeddings``: ``(chunks, local, dim)``, NaN rows where silent) a centroid,
    maximising the chunk's total cosine with distinct centroids for its local speakers (while there are enough)."""
    chunks, local, _ = embeddings.shape
    k = len(centroids)
    labels = np.full((chunks, local), -1, dtype=np.int64)
    similarity = np.zeros((chunks, local), dtype=np.float32)
    margin = np.zeros((chunks, local), dtype=np.float32)
    if k == 0:
        return SpeakerAssignment(labels, centroids, similarity, margin)
    active = ~np.isnan(embeddings).any(axis=-1)
    scores = np.einsum("csd,kd->csk", np.nan_to_num(embeddings), centroids)
    for c in np.flatnonzero(active.any(axis=1)):
        rows = np.flatnonzero(active[c])
        score = scores[c, rows]
        if len(rows) <= k:
            r, cols = linear_sum_assignment(score, maximize=True)
            labels[c, rows[r]] = cols
        else:  # more local speakers than speakers: distinct while possible, the rest to their nearest
            labels[c, rows] = np.argmax(score, axis=1)
    rows, cols = np.nonzero(labels >= 0)
    similarity[rows, cols] = scores[rows, cols, labels[rows, cols]]
    if k > 1:
        others = scores[rows, cols].copy()
        others[np.arange(len(rows)), labels[rows, cols]] = -np.inf
        margin[rows, cols] = similarity[rows, cols] - others.max(axis=1)
    else:
        margin[rows, cols] = 1.0
    return SpeakerAssignment(labels, centroids, similarity, margin)
