"""Global clustering of local-speaker embeddings: threshold, size rule, count hints, per-chunk constraint."""

import numpy as np
import pytest

from diarize.config import SpeakerClusteringConfig
from diarize.errors import ConfigError
from diarize.local_embeddings import LocalTurns
from diarize.speaker_clustering import MODEL_DEFAULTS, ClusteringDefaults, assign_turns, cluster_speakers, resolve
from diarize.speaker_count import SpeakerBounds

FREE = SpeakerBounds(1, 20)
PARAMS = ClusteringDefaults(threshold=0.5, min_cluster_seconds=3.0)


def voices(n_speakers: int, per_speaker: int, spread: float, seed: int = 0, dim: int = 64):
    """Unit embeddings around ``n_speakers`` random orthogonal-ish centres; labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_speakers, dim))
    x = np.repeat(centres, per_speaker, axis=0) + spread * rng.standard_normal((n_speakers * per_speaker, dim))
    labels = np.repeat(np.arange(n_speakers), per_speaker)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_threshold_finds_the_number_of_voices(k):
    x, labels = voices(k, 12, 0.3, seed=k)
    centroids = cluster_speakers(x, np.full(len(x), 2.0), FREE, PARAMS)
    assert len(centroids) == k
    # Each true voice lands on exactly one centroid.
    nearest = np.argmax(x @ centroids.T, axis=1)
    assert all(len(set(nearest[labels == j])) == 1 for j in range(k))
    assert len(set(nearest)) == k


def test_small_clusters_fold_into_the_nearest_large_one():
    x, _ = voices(3, 10, 0.3, seed=1)
    outlier = np.random.default_rng(5).standard_normal((1, x.shape[1]))
    x = np.vstack([x, outlier / np.linalg.norm(outlier)])
    seconds = np.full(len(x), 2.0)
    seconds[-1] = 1.0  # an outlier with 1 s of speech is not a speaker of its own
    assert len(cluster_speakers(x, seconds, FREE, PARAMS)) == 3
    seconds[-1] = 5.0
    assert len(cluster_speakers(x, seconds, FREE, PARAMS)) == 4
    # In a short file a tenth of the clean speech is enough: 2 s of 10 s makes a speaker, as 6 s of 60 s.
    short = np.array([4.0, 4.0, 2.0])
    three = np.vstack([x[0], x[10], outlier[0] / np.linalg.norm(outlier)])
    assert len(cluster_speakers(three, short, FREE, PARAMS)) == 3
    assert len(cluster_speakers(three, np.array([60.0, 60.0, 2.0]), FREE, PARAMS)) == 2


def test_count_hints_bound_the_result():
    x, _ = voices(4, 10, 0.3, seed=2)
    seconds = np.full(len(x), 2.0)
    assert len(cluster_speakers(x, seconds, SpeakerBounds(2, 2), PARAMS)) == 2
    assert len(cluster_speakers(x, seconds, SpeakerBounds(6, 6), PARAMS)) == 6
    assert len(cluster_speakers(x, seconds, SpeakerBounds(1, 3), PARAMS)) == 3
    assert len(cluster_speakers(x, seconds, SpeakerBounds(5, 9), PARAMS)) == 5
    assert len(cluster_speakers(x, seconds, SpeakerBounds(2, 9), PARAMS)) == 4


def test_no_or_one_embedding():
    assert cluster_speakers(np.zeros((0, 8)), np.zeros(0), FREE, PARAMS).shape == (0, 8)
    one = np.eye(8)[:1]
    assert np.allclose(cluster_speakers(one, np.ones(1), FREE, PARAMS), one)


def turns_of(rows, embeddings):
    """LocalTurns from (chunk, speaker, first, last) rows."""
    c, s, a, b = (np.array(x) for x in zip(*rows))
    n = len(rows)
    return LocalTurns(c, s, a, b, np.asarray(embeddings, np.float32), np.ones(n, np.float32), np.ones(n, bool),
                      np.ones(n, bool), np.ones(n, bool))


def test_overlapping_turns_of_a_chunk_get_two_speakers_others_their_nearest():
    centroids = np.eye(3, 8, dtype=np.float32)
    like_a = np.stack([centroids[0] * 0.9 + centroids[1] * 0.1, centroids[0] * 0.8 + centroids[1] * 0.4])
    like_a /= np.linalg.norm(like_a, axis=1, keepdims=True)
    nan = np.full(8, np.nan)
    turns = turns_of(
        [(0, 0, 0, 100), (0, 1, 50, 150),  # overlap: must differ, the weaker match gives way
         (1, 0, 0, 100), (1, 1, 200, 300),  # no overlap: both may be A
         (1, 0, 120, 125),  # too short to embed: takes its local speaker's nearest turn's label
         (2, 2, 0, 50)],
        [like_a[0], like_a[1], like_a[0], like_a[1], nan, centroids[2]])
    out = assign_turns(turns, centroids)
    assert list(out.labels) == [0, 1, 0, 0, 0, 2]
    assert out.margin[5] == pytest.approx(1.0) and out.similarity[0] > 0.9 and out.similarity[4] == 0


def test_model_defaults_are_keyed_by_model():
    assert resolve(SpeakerClusteringConfig(), "campplus-zh-en-common") == MODEL_DEFAULTS["campplus-zh-en-common"]
    assert resolve(SpeakerClusteringConfig(threshold=0.3), "campplus-zh-en-common").threshold == 0.3
    with pytest.raises(ConfigError, match="no clustering defaults"):
        resolve(SpeakerClusteringConfig(), "some-other-model")
    assert resolve(SpeakerClusteringConfig(threshold=0.3, min_cluster_seconds=1), "x") == ClusteringDefaults(0.3, 1)
