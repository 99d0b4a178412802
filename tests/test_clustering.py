import numpy as np
import pytest

from diarize.clustering import (
    bimodal_bic,
    cluster_embeddings,
    fold_mixtures,
    merge_similar_clusters,
    relabel_by_appearance,
    split_off_outliers,
)
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


def test_small_clusters_merge_at_their_own_lower_threshold():
    pair = directions_at([0.83, 0.0])
    few = np.repeat(pair, [5, 5, 30], axis=0)  # two 5-window clusters at cosine 0.83, and a third voice
    labels = np.repeat(np.arange(3), [5, 5, 30])
    assert len(np.unique(merge_similar_clusters(few, labels, threshold=0.84, min_clusters=1))) == 3
    merged = merge_similar_clusters(few, labels, 0.84, 1, small_threshold=0.82, small_windows=20)
    assert len(np.unique(merged)) == 2
    many = np.repeat(pair, [25, 25, 30], axis=0)  # well-sampled clusters keep the main threshold
    labels = np.repeat(np.arange(3), [25, 25, 30])
    kept = merge_similar_clusters(many, labels, 0.84, 1, small_threshold=0.82, small_windows=20)
    assert len(np.unique(kept)) == 3


def look_alike_pair(two_voices: bool, per_cluster: int = 30, dim: int = 16, seed: int = 0):
    """Two clusters whose centroids sit at cosine about 0.86, beside a third, unrelated voice (labels 0, 1, 2).

    ``two_voices``: two tight voices either side of the first axis. Otherwise one voice spread along the
    second axis, cut in two halves by the sign of that spread, as k-means cuts an elongated cluster.
    """
    rng = np.random.default_rng(seed)
    axis, across, other = np.eye(dim)[:3]
    offsets = np.repeat([-0.27, 0.27], per_cluster) if two_voices else 0.4 * rng.standard_normal(2 * per_cluster)
    centres = np.vstack([axis + offsets[:, None] * across, np.tile(other, (per_cluster, 1))])
    x = centres + 0.1 * rng.standard_normal(centres.shape) / np.sqrt(dim)
    labels = np.concatenate([(offsets > 0).astype(int), np.full(per_cluster, 2)])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def test_two_modes_along_the_centroid_line_keep_look_alike_voices_apart():
    for two_voices in (True, False):
        x, labels = look_alike_pair(two_voices)
        a, b = (x[labels == c].mean(axis=0) for c in (0, 1))
        assert 0.84 < a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) < 0.88  # both merge on cosine alone
        assert len(np.unique(merge_similar_clusters(x, labels, 0.84, 1))) == 2
        score = bimodal_bic(x[labels < 2] @ (a - b))
        kept = merge_similar_clusters(x, labels, 0.84, 1, bimodal_above=1.35, bimodal_below=0.88)
        if two_voices:
            assert score > 1.35 and len(np.unique(kept)) == 3
        else:
            assert score < 1.35 and len(np.unique(kept)) == 2
    x, labels = look_alike_pair(True)
    assert len(np.unique(merge_similar_clusters(x, labels, 0.84, 1, bimodal_above=1.35, bimodal_below=0.85))) == 2


def near(direction: np.ndarray, count: int, seed: int, spread: float = 0.2) -> np.ndarray:
    """``count`` unit vectors scattered around ``direction``."""
    x = direction + spread * np.random.default_rng(seed).standard_normal((count, len(direction))) / np.sqrt(len(direction))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_small_cluster_that_blends_two_voices_is_folded_but_a_distinct_one_is_not():
    a, b, c = np.eye(16)[:3]
    blend = (a + b) / np.sqrt(2)
    x = np.concatenate([near(a, 20, 1), near(b, 20, 2), near(blend, 4, 3), near(c, 4, 4)])
    labels = np.repeat([0, 1, 2, 3], [20, 20, 4, 4])
    folded = fold_mixtures(x, labels, fit=0.84, max_windows=10)
    assert len(np.unique(folded)) == 3 and set(folded[40:44]) <= {0, 1} and set(folded[44:]) == {3}
    assert len(np.unique(fold_mixtures(x, labels, fit=0.84, max_windows=3))) == 4  # too big to fold
    assert len(np.unique(fold_mixtures(x, labels, fit=0.84, max_windows=10, min_clusters=4))) == 4


def test_windows_unlike_every_cluster_become_a_speaker_only_when_they_agree():
    a, b, c = np.eye(16)[:3]
    x = np.concatenate([near(a, 20, 1), near(b, 20, 2), near(c, 3, 3)])
    labels = np.repeat([0, 1, 0], [20, 20, 3])  # the quiet third voice was absorbed by the first
    split = split_off_outliers(x, labels, below=0.65, min_windows=2, coherence=0.6)
    assert split[40:].tolist() == [2, 2, 2] and split[:40].tolist() == labels[:40].tolist()
    assert np.array_equal(split_off_outliers(x, labels, below=0.65, min_windows=4, coherence=0.6), labels)
    scattered = np.concatenate([x[:40], np.eye(16)[5:8]])  # three unlike windows that are unlike each other too
    assert np.array_equal(split_off_outliers(scattered, labels, below=0.65, min_windows=2, coherence=0.6), labels)


def test_a_voice_heard_in_only_two_windows_is_still_counted():
    x, truth = synthetic_speakers(3, seed=8)
    rng = np.random.default_rng(9)
    quiet = rng.standard_normal(x.shape[1])
    few = near(quiet / np.linalg.norm(quiet), 2, 10, spread=0.35).astype(np.float32)
    result = cluster_embeddings(np.concatenate([x, few]), SpeakerBounds(1, 20))
    assert result.num_speakers == 4 and len(set(result.labels[-2:])) == 1
    assert not set(result.labels[-2:]) & set(result.labels[:-2])
    plain = cluster_embeddings(np.concatenate([x, few]), SpeakerBounds(1, 20), ClusteringConfig(outlier_below=None))
    assert plain.num_speakers == 3


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
