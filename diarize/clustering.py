"""Group window embeddings into speakers: spectral (default) or k-means, then merge look-alike clusters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from .config import ClusteringConfig
from .speaker_count import SpeakerBounds, estimate_speaker_count, spectral_embedding


@dataclass(frozen=True)
class Clustering:
    """A speaker index per embedding (0..k-1, by first appearance) and each speaker's unit centroid."""

    labels: np.ndarray
    centroids: np.ndarray

    @property
    def num_speakers(self) -> int:
        return len(self.centroids)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def centroids_of(embeddings: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Unit mean embedding of each label 0..k-1."""
    sums = np.zeros((k, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, embeddings)
    return _unit(sums).astype(np.float32)


def representative_indices(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` indices spread evenly over ``range(n)`` (deterministic)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


# A two-component 1-D mixture (five parameters) says nothing about fewer windows than this per component.
_MIN_WINDOWS_PER_MODE = 3


def bimodal_bic(values: np.ndarray) -> float:
    """How much better two Gaussians fit ``values`` than one: the BIC difference per value (positive: two modes).

    Projected on the line through their centroids, two voices' windows form two modes; the halves of one
    voice that k-means cut apart form one, however far apart their centroids.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    one = GaussianMixture(1).fit(x).bic(x)
    two = GaussianMixture(2, n_init=3, random_state=0).fit(x).bic(x)
    return float((one - two) / len(x))


def merge_similar_clusters(
    embeddings: np.ndarray, labels: np.ndarray, threshold: float, min_clusters: int, min_size: int = 1,
    last_pair_threshold: float | None = None, small_threshold: float | None = None, small_windows: int = 0,
    bimodal_above: float | None = None, bimodal_below: float = 1.0,
) -> np.ndarray:
    """Merge clusters whose centroids are more similar than ``threshold``, and clusters smaller
    than ``min_size``, most similar pair first, never going below ``min_clusters``.

    A pair where either cluster has fewer than ``small_windows`` windows merges above ``small_threshold``:
    few windows give a noisy centroid, so the halves of one voice look less alike.
    The last two clusters merge above ``last_pair_threshold`` (default ``threshold``): among many voices a
    close pair is likely two people, but two clusters that alike are likelier one voice split in two.
    With ``bimodal_above``, a pair under cosine ``bimodal_below`` whose windows give a ``bimodal_bic`` above
    it along the line through both centroids is kept apart (until either cluster changes): two look-alike voices.
    """
    labels = labels.copy()
    kept_apart: set[tuple[int, int]] = set()
    while True:
        present = np.unique(labels)
        k = len(present)
        if k <= max(min_clusters, 1):
            return labels
        remap = np.searchsorted(present, labels)
        centroids = centroids_of(embeddings, remap, k)
        sizes = np.bincount(remap, minlength=k)
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -np.inf)
        small = np.flatnonzero(sizes < min_size)
        if len(small):
            a = small[np.argmin(sizes[small])]
            b = int(np.argmax(similarity[a]))
        else:
            for x, y in kept_apart:
                similarity[np.searchsorted(present, x), np.searchsorted(present, y)] = -np.inf
            a, b = np.unravel_index(np.argmax(similarity), similarity.shape)
            needed = threshold if k > 2 or last_pair_threshold is None else last_pair_threshold
            if small_threshold is not None and min(sizes[a], sizes[b]) < small_windows:
                needed = min(needed, small_threshold)
            if similarity[a, b] < needed:
                return labels
            if bimodal_above is not None and k > 2 and similarity[a, b] < bimodal_below and \
                    min(sizes[a], sizes[b]) >= _MIN_WINDOWS_PER_MODE:
                members = (remap == a) | (remap == b)
                if bimodal_bic(embeddings[members] @ (centroids[a] - centroids[b])) > bimodal_above:
                    kept_apart |= {(present[a], present[b]), (present[b], present[a])}
                    continue
        labels[remap == a] = present[b]
        kept_apart = {p for p in kept_apart if present[a] not in p and present[b] not in p}


def mixture_fit(target: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Cosine between ``target`` and its best positive mix of ``a`` and ``b`` (0 when no positive mix fits)."""
    basis = np.stack([a, b], axis=1).astype(np.float64)
    weights, *_ = np.linalg.lstsq(basis, target.astype(np.float64), rcond=None)
    if (weights <= 0).any():
        return 0.0
    mix = basis @ weights
    return float(mix @ target / (np.linalg.norm(mix) * np.linalg.norm(target)))


def fold_mixtures(
    embeddings: np.ndarray, labels: np.ndarray, fit: float, max_windows: int, min_clusters: int = 1
) -> np.ndarray:
    """Fold clusters of at most ``max_windows`` that look like a blend of two others into their nearest,
    never going below ``min_clusters``: windows straddling a change of speaker (or overlapped speech)
    cluster together but are nobody's voice.
    """
    labels = labels.copy()
    while True:
        present, remap = np.unique(labels, return_inverse=True)
        k = len(present)
        if k < 3 or k <= min_clusters:
            return labels
        centroids = centroids_of(embeddings, remap, k)
        sizes = np.bincount(remap, minlength=k)
        blends = []
        for c in np.flatnonzero(sizes <= max_windows):
            others = [o for o in range(k) if o != c]
            best = max(mixture_fit(centroids[c], centroids[a], centroids[b])
                       for i, a in enumerate(others) for b in others[i + 1:])
            if best >= fit:
                blends.append((best, c))
        if not blends:
            return labels
        _, c = max(blends)
        similarity = centroids @ centroids[c]
        similarity[c] = -np.inf
        labels[remap == c] = present[int(np.argmax(similarity))]


def split_off_outliers(
    embeddings: np.ndarray, labels: np.ndarray, below: float, min_windows: int, coherence: float
) -> np.ndarray:
    """Give windows unlike every cluster (cosine to each centroid under ``below``) a cluster of their own
    when there are at least ``min_windows`` of them and they resemble each other (mean pairwise cosine
    ``coherence``): a speaker who said only a sentence or two is too small to survive clustering.
    """
    k = int(labels.max()) + 1
    centroids = centroids_of(embeddings, labels, k)
    outliers = np.flatnonzero((embeddings @ centroids.T).max(axis=1) < below)
    if len(outliers) < min_windows:
        return labels
    n = len(outliers)
    group = embeddings[outliers]
    pairwise = group @ group.T
    if n > 1 and (pairwise.sum() - np.trace(pairwise)) / (n * (n - 1)) < coherence:
        return labels
    labels = labels.copy()
    labels[outliers] = k
    return labels


def relabel_by_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0..k-1 in order of first appearance."""
    _, first = np.unique(labels, return_index=True)
    order = labels[np.sort(first)]
    mapping = np.empty(int(labels.max()) + 1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    return mapping[labels]


def cluster_embeddings(embeddings: np.ndarray, bounds: SpeakerBounds, config: ClusteringConfig = ClusteringConfig()) -> Clustering:
    """Cluster unit embeddings into between ``bounds.min_speakers`` and ``bounds.max_speakers`` speakers.

    At most ``config.max_windows`` evenly spread embeddings are clustered (bounding time and the
    quadratic affinity memory on long audio); every embedding then joins its nearest centroid.
    """
    n = len(embeddings)
    if n == 0:
        return Clustering(np.zeros(0, dtype=np.int64), np.zeros((0, embeddings.shape[1]), dtype=np.float32))
    if n < 3 or bounds.max_speakers == 1:
        return Clustering(np.zeros(n, dtype=np.int64), centroids_of(embeddings, np.zeros(n, dtype=np.int64), 1))
    subset = representative_indices(n, config.max_windows)
    sample = embeddings[subset]
    estimate = estimate_speaker_count(sample, bounds, config.p_percentile_grid)
    # Over-split, then merge look-alikes: merging is safer than splitting blends. With a known count the
    # merging goes down to exactly that count, whatever the similarity.
    k = int(np.ceil(estimate.num_speakers * config.oversplit))
    if not bounds.exact:
        k = min(k, bounds.max_speakers)
    k = min(k, len(sample))
    if k != estimate.num_speakers:
        estimate = estimate_speaker_count(sample, SpeakerBounds(k, k), config.p_percentile_grid)
    if config.method == "spectral":
        features = _unit(spectral_embedding(estimate.affinity, k))
    else:
        features = sample
    sample_labels = KMeans(k, init="k-means++", n_init=10, random_state=config.seed).fit_predict(features)
    threshold = -1.0 if bounds.exact else config.merge_threshold
    sample_labels = merge_similar_clusters(
        sample, sample_labels, threshold, bounds.min_speakers, config.min_cluster_windows,
        config.last_pair_threshold, config.small_merge_threshold, config.small_cluster_windows,
        None if bounds.exact else config.bimodal_above, config.bimodal_below,
    )
    if config.blend_fit is not None:
        sample_labels = fold_mixtures(
            sample, sample_labels, config.blend_fit, config.blend_max_windows, bounds.min_speakers
        )
    labels = relabel_by_appearance(sample_labels)
    if config.outlier_below is not None and not bounds.exact and labels.max() + 1 < bounds.max_speakers:
        labels = relabel_by_appearance(split_off_outliers(
            sample, labels, config.outlier_below, config.outlier_min_windows, config.outlier_coherence
        ))
    if len(subset) < n:
        centroids = centroids_of(sample, labels, int(labels.max()) + 1)
        nearest = np.argmax(embeddings @ centroids.T, axis=1)
        nearest[subset] = labels
        labels = relabel_by_appearance(nearest)
    return Clustering(labels, centroids_of(embeddings, labels, int(labels.max()) + 1))
