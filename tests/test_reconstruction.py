"""Reconstruction of overlapping turns from chunk activity, and the exclusive view of a result."""

import numpy as np
import pytest

from diarize.config import ReconstructionConfig
from diarize.local_embeddings import LocalTurns, turn_runs
from diarize.reconstruction import reconstruct
from diarize.result import Result, Speaker, Utterance, exclusive_utterances

STEP = 0.02
FRAMES = 500  # 10 s chunks


def chunked(truth: np.ndarray, step_frames: int, local_of: dict[int, int]):
    """Cut a global (frames, speakers) truth into chunks of FRAMES every ``step_frames``; each chunk's local
    speakers are its active speakers in ``local_of`` order, with their global labels."""
    n = len(truth)
    starts = np.arange(0, max(n - FRAMES, 0) + 1, step_frames)
    activity = np.zeros((len(starts), FRAMES, 3), dtype=np.float32)
    labels = np.full((len(starts), 3), -1)
    for c, first in enumerate(starts):
        block = truth[first:first + FRAMES]
        present = [k for k in sorted(local_of, key=local_of.get) if block[:, k].any()]
        for s, k in enumerate(present[:3]):
            activity[c, :len(block), s] = block[:, k]
            labels[c, s] = k
    return activity, starts * STEP, labels


def rebuild(activity, starts, labels, n, k):
    """Reconstruct with one turn per active (chunk, local speaker) run, labelled as its local speaker."""
    rows, turn_labels = [], []
    for c in range(activity.shape[0]):
        for s in range(3):
            for a, b in turn_runs(activity[c, :, s] > 0, 1):
                rows.append((c, s, a, b))
                turn_labels.append(labels[c, s])
    cc, ss, aa, bb = (np.array(x) for x in zip(*rows))
    turns = LocalTurns(cc, ss, aa, bb, np.zeros((len(rows), 4), np.float32), np.ones(len(rows), np.float32),
                       np.ones(len(rows), bool), np.ones(len(rows), bool), np.ones(len(rows), bool))
    return reconstruct(activity, starts, STEP, STEP, n * STEP, turns, np.array(turn_labels), k)


def test_overlap_survives_reconstruction():
    n = 1500  # 30 s
    truth = np.zeros((n, 2), dtype=bool)
    truth[100:800, 0] = True  # A: 2-16 s
    truth[700:1400, 1] = True  # B: 14-28 s; 14-16 s overlapped
    activity, starts, labels = chunked(truth, 250, {0: 0, 1: 1})
    timeline = rebuild(activity, starts, labels, n, 2)
    turns = timeline.turns(ReconstructionConfig(min_duration_off=0.0, min_duration_on=0.0))
    assert [k for k, _, _ in turns] == [0, 1]
    (_, a0, a1), (_, b0, b1) = turns
    assert a0 == pytest.approx(2.0, abs=0.05) and a1 == pytest.approx(16.0, abs=0.05)
    assert b0 == pytest.approx(14.0, abs=0.05) and b1 == pytest.approx(28.0, abs=0.05)
    exclusive = timeline.turns(ReconstructionConfig(min_duration_off=0.0, min_duration_on=0.0), exclusive=True)
    covered = sum(b - a for _, a, b in exclusive)
    assert covered == pytest.approx(26.0, abs=0.1)  # 2-28 s, each instant once
    assert all(x[2] <= y[1] + 1e-9 for x, y in zip(exclusive, exclusive[1:]))


def test_minority_chunk_vote_does_not_add_a_speaker():
    n = 1000
    truth = np.zeros((n, 2), dtype=bool)
    truth[:, 0] = True
    activity, starts, labels = chunked(truth, 125, {0: 0, 1: 1})
    # One of the four chunks covering frames 375-475 wrongly hears a second speaker there, at its centre.
    activity[1, 250:350, 1] = 1
    labels[1, 1] = 1
    timeline = rebuild(activity, starts, labels, n, 2)
    turns = timeline.turns(ReconstructionConfig(min_duration_off=0.0, min_duration_on=0.0))
    assert [k for k, _, _ in turns] == [0]


def test_pauses_bridged_and_blips_dropped():
    n = 1000
    truth = np.zeros((n, 1), dtype=bool)
    truth[0:300, 0] = True
    truth[310:600, 0] = True  # 0.2 s pause
    truth[800:803, 0] = True  # 0.06 s blip
    activity, starts, labels = chunked(truth, 500, {0: 0})
    timeline = rebuild(activity, starts, labels, n, 1)
    turns = timeline.turns(ReconstructionConfig(min_duration_off=0.3, min_duration_on=0.1))
    assert len(turns) == 1 and turns[0][2] == pytest.approx(12.0, abs=0.05)
    raw = timeline.turns(ReconstructionConfig(min_duration_off=0.0, min_duration_on=0.0))
    assert len(raw) == 3


def test_exclusive_view_gives_overlaps_to_the_longer_utterance():
    u = [Utterance("A", 0.0, 10.0), Utterance("B", 4.0, 5.0), Utterance("B", 9.0, 12.0),
         Utterance("C", 1.0, 2.0, channel=2), Utterance("D", 1.5, 3.0, channel=2)]
    out = exclusive_utterances(u)
    assert [(x.speaker, x.start, x.end) for x in out] == [
        ("A", 0.0, 10.0), ("C", 1.0, 1.5), ("D", 1.5, 3.0), ("B", 10.0, 12.0)]
    result = Result(u, [Speaker("A", 10, 1), Speaker("B", 4, 2)], 12.0)
    assert result.overlapped_seconds == pytest.approx(2.5)
    exclusive = result.exclusive()
    assert exclusive.overlapped_seconds == 0
    assert exclusive.speaker("B").talk_time == pytest.approx(2.0) and exclusive.speaker("B").utterance_count == 1


def test_speech_heard_by_another_detector_gets_a_speaker():
    n = 1000
    truth = np.zeros((n, 2), dtype=bool)
    truth[0:300, 0] = True
    truth[500:800, 1] = True
    activity, starts, labels = chunked(truth, 500, {0: 0, 1: 1})
    timeline = rebuild(activity, starts, labels, n, 2).filled(np.array([[6.5, 9.0], [18.0, 19.0]]))
    turns = timeline.turns(ReconstructionConfig(min_duration_off=0.0, min_duration_on=0.0))
    # Nobody speaks at 6.5-9 s or 18-19 s: each frame takes the speaker of the nearest speech (A ends at 6 s,
    # B starts at 10 s and ends at 16 s).
    assert [(k, round(a, 1), round(b, 1)) for k, a, b in turns] == [
        (0, 0.0, 6.0), (0, 6.5, 8.0), (1, 8.0, 9.0), (1, 10.0, 16.0), (1, 18.0, 19.0)]
