"""Local turns: found from chunk activity, cut at the signal's pauses, embedded once each."""

import numpy as np

from diarize.local_embeddings import FBANK_HOP, embed_local_turns, split_at_pauses

STEP = 0.02  # segmentation frame step of these synthetic chunks (s)


def test_turns_are_cut_in_the_middle_of_pauses_that_leave_long_enough_pieces():
    assert split_at_pauses(0, 100, np.array([[40, 50]]), 30) == [(0, 45), (45, 100)]
    assert split_at_pauses(0, 100, np.array([[20, 30]]), 30) == [(0, 100)]  # 20 frames before it: too short
    assert split_at_pauses(0, 100, np.array([[-10, -5], [40, 44], [70, 74]]), 29) == [(0, 42), (42, 100)]
    assert split_at_pauses(0, 100, np.zeros((0, 2), np.int64), 10) == [(0, 100)]


def embed_mean(segments: list[np.ndarray]) -> np.ndarray:
    """Stand-in for a speaker model: the unit-normalised mean frame, so a piece's vector shows its frames."""
    out = np.stack([s.mean(axis=0) for s in segments])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_a_turn_cut_at_a_pause_is_kept_whole_for_clustering_and_in_pieces_for_labelling():
    frames = 500  # one 10 s chunk: one local speaker throughout, a different "voice" after 5 s
    activity = np.zeros((1, frames, 3), np.float32)
    activity[0, :, 0] = 1
    n_fbank = int(10.0 / FBANK_HOP)
    features = np.zeros((n_fbank, 2), np.float32)
    features[: n_fbank // 2, 0] = 1
    features[n_fbank // 2:, 1] = 1
    args = (activity, np.array([0.0]), STEP, STEP, features, embed_mean, 2, 0.5)

    plain = embed_local_turns(*args)
    assert len(plain) == 1 and plain.whole.all() and plain.leaf.all()

    cut = embed_local_turns(*args, pauses=np.array([[4.9, 5.1]]), min_piece=1.0)
    assert list(cut.whole) == [True, False, False] and list(cut.leaf) == [False, True, True]
    assert (cut.first[1], cut.last[1], cut.first[2], cut.last[2]) == (0, 250, 250, 500)
    assert cut.embeddings[1] @ [1, 0] > 0.99 and cut.embeddings[2] @ [0, 1] > 0.99  # each piece its own voice
    assert np.allclose(cut.embeddings[0], plain.embeddings[0])  # the whole turn as before
    leaves = cut.subset(cut.leaf)
    assert len(leaves) == 2 and leaves.whole.sum() == 0

    near_edge = embed_local_turns(*args, pauses=np.array([[0.5, 0.7]]), min_piece=1.0)
    assert len(near_edge) == 1  # 0.5 s before the pause: not a piece worth embedding
