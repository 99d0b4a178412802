import numpy as np
import pytest

from diarize.clustering import cluster_embeddings, merge_similar_clusters, relabel_by_appearance
from diarize.config import ClusteringConfig
from diarize.errors import ConfigError
from diarize.speaker_count import SpeakerBounds, estimate_speaker_count, speaker_bounds


def synthetic_speakers(k: int, per_speaker: int = 40, spread: float = 0.35, dim: int = 64, seed: int = 0):
    """Unit embeddings around ``k`` random speaker directions, in turns of 5 windows."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    turns = np.repeat(np.arange(k), 5)
    truth = np.concatenate([rng.permutation(turns) for _ in range(per_speaker // 5)])
    x = centers[truth] + spread * rng.standard_normal((len(truth), dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    return sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(labels)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_spectral_finds_the_speaker_count(k):
    x, truth = synthetic_speakers(k, seed=k)
    result = cluster_embeddings(x, SpeakerBounds(1, 20), ClusteringConfig())
    assert result.num_speakers == k
    assert purity(result.labels, truth) > 0.98


def test_kmeans_with_exact_count_and_determinism():
    x, truth = synthetic_speakers(4, seed=7)
    config = ClusteringConfig(method="kmeans", seed=3)
    a = cluster_embeddings(x, SpeakerBounds(4, 4), config)
    b = cluster_embeddings(x, SpeakerBounds(4, 4), config)
    assert a.num_speakers == 4 and np.array_equal(a.labels, b.labels)
    assert purity(a.labels, truth) > 0.98


def test_bounds_are_respected():
    x, _ = synthetic_speakers(5, seed=1)
    assert cluster_embeddings(x, SpeakerBounds(1, 3)).num_speakers <= 3
    one, _ = synthetic_speakers(1, seed=2)
    assert cluster_embeddings(one, SpeakerBounds(2, 4)).num_speakers >= 2


def test_subsampled_clustering_assigns_every_window():
    x, truth = synthetic_speakers(3, per_speaker=200, seed=4)
    result = cluster_embeddings(x, SpeakerBounds(1, 10), ClusteringConfig(max_windows=100))
    assert len(result.labels) == len(x) and result.num_speakers == 3
    assert purity(result.labels, truth) > 0.97


def test_labels_numbered_by_first_appearance():
    assert relabel_by_appearance(np.array([2, 2, 0, 1, 0])).tolist() == [0, 0, 1, 2, 1]


def test_merge_joins_only_similar_clusters():
    x, truth = synthetic_speakers(2, seed=5)
    split = truth * 2 + (np.arange(len(truth)) % 2)  # each true speaker cut in two halves
    merged = merge_similar_clusters(x, split, threshold=0.8, min_clusters=1)
    assert len(np.unique(merged)) == 2
    assert purity(merged, truth) == 1.0
    assert len(np.unique(merge_similar_clusters(x, split, threshold=0.8, min_clusters=3))) == 3


def directions_at(cosines: list[float], dim: int = 16) -> np.ndarray:
    """Unit vectors: the first, then one per cosine to the first (each in its own orthogonal direction)."""
    out = [np.eye(dim)[0]]
    for i, c in enumerate(cosines, start=1):
        out.append(c * np.eye(dim)[0] + np.sqrt(1 - c**2) * np.eye(dim)[i])
    return np.array(out)


def test_the_last_pair_merges_at_a_lower_similarity_than_the_others():
    two = np.repeat(directions_at([0.8]), 5, axis=0)
    labels = np.repeat(np.arange(2), 5)
    assert len(np.unique(merge_similar_clusters(two, labels, threshold=0.82, min_clusters=1))) == 2
    merged = merge_similar_clusters(two, labels, threshold=0.82, min_clusters=1, last_pair_threshold=0.78)
    assert len(np.unique(merged)) == 1
    three = np.repeat(directions_at([0.8, 0.0]), 5, axis=0)  # a close pair beside a third voice: kept apart
    labels = np.repeat(np.arange(3), 5)
    kept = merge_similar_clusters(three, labels, threshold=0.82, min_clusters=1, last_pair_threshold=0.78)
    assert len(np.unique(kept)) == 3


def test_eigengap_with_exact_bounds_returns_that_count():
    x, _ = synthetic_speakers(3, seed=6)
    assert estimate_speaker_count(x, SpeakerBounds(5, 5)).num_speakers == 5


def test_speaker_bounds_follow_duration_and_hints():
    assert speaker_bounds(60).max_speakers == 20
    assert speaker_bounds(300).max_speakers == 10
    assert speaker_bounds(3600).max_speakers == 30
    assert speaker_bounds(3600, min_speakers=40).min_speakers == 40
    assert speaker_bounds(60, num_speakers=3) == SpeakerBounds(3, 3)
    for bad in ({"num_speakers": 0}, {"min_speakers": 3, "max_speakers": 2}, {"num_speakers": 2, "max_speakers": 3},
                {"max_speakers": 2.5}):
        with pytest.raises(ConfigError):
            speaker_bounds(60, **bad)
