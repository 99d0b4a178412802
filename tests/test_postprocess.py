import numpy as np
import pytest

from diarize.config import PostprocessConfig, SegmentationConfig
from diarize.postprocess import assign_utterances, speaker_label, window_confidence
from diarize.result import UNKNOWN
from diarize.segmentation import sliding_windows


def one_hot_similarity(labels: np.ndarray, k: int, margin: float = 0.3) -> np.ndarray:
    sim = np.full((len(labels), k), 0.5)
    sim[np.arange(len(labels)), labels] += margin
    return sim


def test_speaker_change_inside_a_region_is_located_between_windows():
    regions = np.array([[0.0, 10.0]])
    windows = sliding_windows(regions, 10.0, SegmentationConfig(window=1.5, hop=0.25))
    labels = (windows.centers > 6.0).astype(np.int64)
    utterances, clusters = assign_utterances(regions, windows, labels, one_hot_similarity(labels, 2), 10.0)
    assert [u.speaker for u in utterances] == ["A", "B"]
    assert utterances[0].start == 0.0 and utterances[-1].end == 10.0
    assert utterances[0].end == pytest.approx(6.0, abs=0.3)
    assert clusters == {"A": 0, "B": 1}


def test_flicker_is_smoothed_away_and_same_speaker_pieces_merge():
    regions = np.array([[0.0, 5.0], [5.3, 9.0]])
    windows = sliding_windows(regions, 9.0, SegmentationConfig(window=1.5, hop=0.25))
    labels = np.zeros(len(windows), dtype=np.int64)
    labels[len(labels) // 3] = 1  # one stray window
    config = PostprocessConfig(smoothing=0.5, merge_gap=0.5)
    utterances, clusters = assign_utterances(regions, windows, labels, one_hot_similarity(labels, 2), 9.0, config)
    assert [(u.speaker, u.start, u.end) for u in utterances] == [("A", 0.0, 9.0)]
    assert clusters == {"A": 0}  # B lost all its speech and is dropped


def test_pauses_are_cut_out_of_utterances_on_both_sides_of_a_change():
    regions = np.array([[0.0, 10.0]])
    windows = sliding_windows(regions, 10.0, SegmentationConfig(window=1.5, hop=0.25))
    labels = (windows.centers > 6.0).astype(np.int64)
    pauses = np.array([[2.0, 2.7], [5.6, 6.5], [9.97, 10.0]])
    utterances, _ = assign_utterances(regions, windows, labels, one_hot_similarity(labels, 2), 10.0, pauses=pauses)
    assert [(u.speaker, u.start, u.end) for u in utterances] == [("A", 0.0, 2.0), ("A", 2.7, 5.6), ("B", 6.5, 9.97)]


def test_distant_same_speaker_pieces_stay_apart():
    regions = np.array([[0.0, 3.0], [5.0, 8.0]])
    windows = sliding_windows(regions, 8.0)
    labels = np.zeros(len(windows), dtype=np.int64)
    utterances, _ = assign_utterances(regions, windows, labels, one_hot_similarity(labels, 1), 8.0)
    assert [(u.start, u.end) for u in utterances] == [(0.0, 3.0), (5.0, 8.0)]


def test_low_confidence_turns_become_unknown():
    regions = np.array([[0.0, 3.0], [4.0, 7.0]])
    windows = sliding_windows(regions, 7.0)
    labels = (windows.region == 1).astype(np.int64)
    sim = one_hot_similarity(labels, 2)
    sim[windows.region == 1] = [0.6, 0.62]  # second turn barely closer to B
    config = PostprocessConfig(unknown_confidence=0.5)
    utterances, clusters = assign_utterances(regions, windows, labels, sim, 7.0, config)
    assert [u.speaker for u in utterances] == ["A", UNKNOWN]
    assert utterances[0].confidence == 1.0 and utterances[1].confidence < 0.5
    assert clusters == {"A": 0}


def test_window_confidence_is_the_clipped_margin():
    sim = np.array([[0.9, 0.5], [0.6, 0.55], [0.5, 0.7]])
    conf = window_confidence(sim, np.array([0, 0, 0]))
    assert conf.tolist() == pytest.approx([1.0, 0.25, 0.0])
    assert window_confidence(np.ones((3, 1)), np.zeros(3, dtype=np.int64)).tolist() == [1, 1, 1]


def test_speaker_labels():
    assert [speaker_label(i) for i in (0, 1, 25, 26, 27, 701, 702)] == ["A", "B", "Z", "AA", "AB", "ZZ", "AAA"]
