"""From window labels to utterances: frame-level voting, smoothing, merging and confidence."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from .config import PostprocessConfig
from .result import UNKNOWN, Utterance
from .segmentation import Windows


def speaker_label(index: int) -> str:
    """A, B, …, Z, AA, AB, … for speaker index 0, 1, …"""
    label = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        label = chr(65 + rem) + label
    return label


def window_confidence(similarity: np.ndarray, labels: np.ndarray, scale: float = 0.2) -> np.ndarray:
    """How clearly each window belongs to its speaker: cosine margin over the best other centroid, in [0, 1]."""
    if similarity.shape[1] < 2:
        return np.ones(len(labels))
    own = similarity[np.arange(len(labels)), labels]
    others = similarity.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return np.clip((own - others.max(axis=1)) / scale, 0.0, 1.0)


def frame_scores(windows: Windows, labels: np.ndarray, num_speakers: int, n_frames: int, step: float) -> np.ndarray:
    """Per-frame votes ``(n_frames, k)``: each window votes for its speaker with a triangular weight peaking at its centre."""
    scores = np.zeros((n_frames, num_speakers))
    first = np.clip(np.floor(windows.starts / step).astype(np.int64), 0, n_frames)
    last = np.clip(np.ceil(windows.ends / step).astype(np.int64), 0, n_frames)
    counts = np.maximum(last - first, 0)
    frames = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    owner = np.repeat(np.arange(len(windows)), counts)
    half = np.maximum((windows.ends - windows.starts) / 2, step)[owner]
    weight = 1.0 - np.abs((frames + 0.5) * step - windows.centers[owner]) / (half + step)
    np.add.at(scores, (frames, labels[owner]), np.clip(weight, 0.05, 1.0))
    return scores


def assign_utterances(
    regions: np.ndarray,
    windows: Windows,
    labels: np.ndarray,
    similarity: np.ndarray,
    duration: float,
    config: PostprocessConfig = PostprocessConfig(),
    pauses: np.ndarray | None = None,
) -> tuple[list[Utterance], dict[str, int]]:
    """Label every speech region frame by frame and return merged, time-ordered utterances.

    ``labels`` and ``similarity`` (window × speaker cosine to centroids) come from clustering.
    Speaker changes inside a region fall where the weighted window votes cross; a median-like
    box filter over votes of ``config.smoothing`` seconds keeps labels from flickering.
    ``pauses`` (quiet stretches inside regions, seconds) are cut out of the utterances last.
    Speakers are named A, B, … in order of first appearance; the mapping from name to cluster
    index is returned too (clusters that lost all their speech are dropped).
    """
    if len(windows) == 0:
        return [], {}
    k = similarity.shape[1]
    step = config.frame_step
    n_frames = int(np.ceil(duration / step)) + 1
    scores = frame_scores(windows, labels, k, n_frames, step)
    size = max(int(round(config.smoothing / step)), 1)
    if size > 1:
        scores = uniform_filter1d(scores, size, axis=0, mode="nearest")
    frame_label = np.argmax(scores, axis=1)
    pieces: list[list] = []
    for start, end in regions:
        a, b = int(start / step), max(int(np.ceil(end / step)), int(start / step) + 1)
        run_labels = frame_label[a:b]
        cuts = np.flatnonzero(np.diff(run_labels)) + 1
        bounds = np.concatenate([[start], (a + cuts) * step, [end]])
        for piece, label in zip(zip(bounds[:-1], bounds[1:]), run_labels[np.concatenate([[0], cuts])]):
            pieces.append([int(label), float(piece[0]), float(piece[1])])
    pieces = _absorb_short(pieces, config.min_utterance)
    merged: list[list] = []
    for label, start, end in pieces:
        if merged and merged[-1][0] == label and start - merged[-1][2] <= config.merge_gap:
            merged[-1][2] = end
        else:
            merged.append([label, start, end])
    if pauses is not None and len(pauses):
        merged = cut_pauses(merged, pauses, config.frame_step)
    confidence = window_confidence(similarity, labels)
    names: dict[int, str] = {}
    utterances = []
    for label, start, end in merged:
        overlap = np.clip(np.minimum(windows.ends, end) - np.maximum(windows.starts, start), 0.0, None)
        weight = overlap * (labels == label)
        conf = float((weight * confidence).sum() / weight.sum()) if weight.sum() > 0 else 0.0
        if conf < config.unknown_confidence:
            name = UNKNOWN
        else:
            name = names.setdefault(label, speaker_label(len(names)))
        utterances.append(Utterance(name, round(start, 3), round(end, 3), round(conf, 3)))
    return utterances, {name: index for index, name in names.items()}


def cut_pauses(pieces: list[list], pauses: np.ndarray, min_duration: float) -> list[list]:
    """``[label, start, end]`` pieces with the ``pauses`` removed; fragments under ``min_duration`` are dropped."""
    out: list[list] = []
    for label, start, end in pieces:
        first, last = np.searchsorted(pauses[:, 1], start, "right"), np.searchsorted(pauses[:, 0], end, "left")
        cursor = start
        for pause_start, pause_end in pauses[first:last]:
            if pause_start - cursor >= min_duration:
                out.append([label, cursor, float(pause_start)])
            cursor = max(cursor, float(pause_end))
        if end - cursor >= min_duration:
            out.append([label, cursor, end])
    return out


def _absorb_short(pieces: list[list], min_duration: float) -> list[list]:
    """Give pieces shorter than ``min_duration`` that touch a neighbour the label of the longer neighbour."""
    for i, (label, start, end) in enumerate(pieces):
        if end - start >= min_duration:
            continue
        neighbours = [
            pieces[j] for j in (i - 1, i + 1)
            if 0 <= j < len(pieces) and (abs(pieces[j][2] - start) < 1e-6 or abs(pieces[j][1] - end) < 1e-6)
        ]
        if neighbours:
            pieces[i][0] = max(neighbours, key=lambda p: p[2] - p[1])[0]
    return pieces
