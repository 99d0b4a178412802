"""Local turns and their speaker embeddings: the units that global clustering labels.

A local turn is one continuous stretch of one local speaker of one chunk (pauses shorter than
:data:`TURN_BRIDGE` do not end it). The segmentation model tells speakers apart well within a turn and at turn changes, but it
sometimes gives two voices one local speaker across a pause (measured on the sim tuning split: 3-7% confusion
when whole local speakers were embedded), so each turn gets its own embedding, from its filterbank frames where
nobody else speaks. The filterbank of the whole file is computed once.

The model also runs one local speaker over a change of voice at a short pause now and then (two readers 0.25 s
apart in one turn). A turn that the signal's own pauses cut into pieces long enough to embed is therefore kept
twice: whole, to shape the clusters (as many turns, as long as before, so the speaker count does not move), and
as its pieces, each labelled on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

FBANK_HOP = 0.010  # s between filterbank frames
FBANK_WINDOW = 0.025
#: A local speaker's pause shorter than this (s) does not end its turn (a breath, a stop consonant).
TURN_BRIDGE = 0.25


@dataclass(frozen=True)
class LocalTurns:
    """One row per local turn or piece of one: its ``chunk``, local ``speaker``, segmentation frames
    ``[first, last)`` of the chunk, ``embeddings`` (NaN rows where too short to embed), the seconds of clean
    (single-speaker) speech behind each, whether the embedding comes from clean speech alone (else from all the
    turn's frames), whether the row is a ``whole`` turn (shapes the clusters) and whether it is a ``leaf``
    (labelled and put on the timeline: a turn not cut at a pause, or a piece of one)."""

    chunk: np.ndarray
    speaker: np.ndarray
    first: np.ndarray
    last: np.ndarray
    embeddings: np.ndarray
    clean_seconds: np.ndarray
    clean: np.ndarray
    whole: np.ndarray
    leaf: np.ndarray

    def __len__(self) -> int:
        return len(self.chunk)

    def subset(self, rows: np.ndarray) -> "LocalTurns":
        """The rows selected by a boolean mask or index array."""
        return LocalTurns(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})

    @property
    def embedded(self) -> np.ndarray:
        return ~np.isnan(self.embeddings).any(axis=1)


def turn_runs(active: np.ndarray, bridge_frames: int) -> list[tuple[int, int]]:
    """``[first, last)`` runs of True in ``active``, joining runs separated by fewer than ``bridge_frames``."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    runs: list[list[int]] = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if runs and a - runs[-1][1] < bridge_frames:
            runs[-1][1] = int(b)
        else:
            runs.append([int(a), int(b)])
    return [(a, b) for a, b in runs]


def split_at_pauses(first: int, last: int, pauses: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """``[first, last)`` cut in the middle of each pause ``(a, b)`` (frame indices) inside it that leaves at
    least ``min_frames`` on both sides; the pieces cover the whole turn."""
    pieces = []
    for a, b in pauses:
        middle = int((a + b) // 2)
        if a - first >= min_frames and last - b >= min_frames:
            pieces.append((first, middle))
            first = middle
    return pieces + [(first, last)]


def fbank_frames_of(frames: int, chunk_start: float, frame_step: float, frame_duration: float,
                    n_fbank: int) -> tuple[int, np.ndarray]:
    """Map a chunk's ``frames`` segmentation frames onto the file's filterbank frames.

    Returns the chunk's first filterbank frame and, for each of its filterbank frames, the segmentation
    frame whose centre is nearest to its centre.
    """
    first = max(int(np.ceil(chunk_start / FBANK_HOP)), 0)
    last = min(int((chunk_start + (frames - 1) * frame_step + frame_duration - FBANK_WINDOW) / FBANK_HOP) + 1, n_fbank)
    centres = np.arange(first, max(last, first)) * FBANK_HOP + FBANK_WINDOW / 2
    index = np.rint((centres - chunk_start - frame_duration / 2) / frame_step).astype(np.int64)
    return first, np.clip(index, 0, frames - 1)


def embed_local_turns(
    activity: np.ndarray,
    chunk_starts: np.ndarray,
    frame_step: float,
    frame_duration: float,
    features: np.ndarray,
    embed: Callable[[list[np.ndarray]], np.ndarray],
    dimension: int,
    min_clean: float,
    pauses: np.ndarray | None = None,
    min_piece: float = 1.0,
    bridge: float = TURN_BRIDGE,
    min_frames: int = 20,
    block_segments: int = 256,
    progress: Callable[[float], None] | None = None,
) -> LocalTurns:
    """Find and embed every local turn of every chunk (``activity``: ``(chunks, frames, local)``, 0/1).

    ``features``: the file's filterbank ``(n, bins)`` at :data:`FBANK_HOP`; ``embed``: list of ``(t, bins)``
    arrays → unit vectors, called with ``block_segments`` at a time (bounded memory). A turn with at least
    ``min_clean`` s of clean speech is embedded from that alone; others from all their frames; turns under
    ``min_frames`` filterbank frames are not embedded. A turn with ``pauses`` inside (``(k, 2)`` s, quiet
    stretches of the signal) that leave ``min_piece`` s on both sides is also embedded in pieces cut there.
    """
    chunks, frames, _ = activity.shape
    bridge_frames = int(round(bridge / frame_step))
    pauses = np.zeros((0, 2)) if pauses is None else np.asarray(pauses, dtype=np.float64).reshape(-1, 2)
    piece_frames = max(int(np.ceil(min_piece / frame_step)), 1)
    rows: list[tuple[int, int, int, int, float, bool, bool, bool]] = []
    vectors: list[np.ndarray] = []
    segments: list[np.ndarray] = []
    owners: list[int] = []

    def flush() -> None:
        if segments:
            out = embed(segments)
            for row, vector in zip(owners, out):
                vectors[row] = vector
            segments.clear()
            owners.clear()

    for c in range(chunks):
        act = activity[c] > 0
        if act.any():
            first_fbank, index = fbank_frames_of(frames, float(chunk_starts[c]), frame_step, frame_duration,
                                                 len(features))
            alone = act.sum(axis=1) == 1
            block = features[first_fbank:first_fbank + len(index)]
            centre = float(chunk_starts[c]) + frame_duration / 2
            here = pauses[(pauses[:, 1] > centre) & (pauses[:, 0] < centre + frames * frame_step)]
            quiet = np.ceil((here - centre) / frame_step).astype(np.int64)  # frames whose centres lie inside

            def add(s: int, a: int, b: int, whole: bool, leaf: bool) -> None:
                inside = (index >= a) & (index < b)
                own = inside & act[index, s]
                only = own & alone[index]
                seconds = float(only.sum() * FBANK_HOP)
                use = only if seconds >= min_clean else own
                rows.append((c, int(s), a, b, seconds, seconds >= min_clean, whole, leaf))
                vectors.append(np.full(dimension, np.nan, dtype=np.float32))
                if use.sum() >= min_frames:
                    segments.append(block[use])
                    owners.append(len(rows) - 1)

            for s in np.flatnonzero(act.any(axis=0)):
                for a, b in turn_runs(act[:, s], bridge_frames):
                    pieces = split_at_pauses(a, b, quiet, piece_frames)
                    add(s, a, b, True, len(pieces) == 1)
                    for first, last in pieces if len(pieces) > 1 else ():
                        add(s, first, last, False, True)
        if len(segments) >= block_segments or c == chunks - 1:
            flush()
            if progress:
                progress((c + 1) / chunks)
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return LocalTurns(empty, empty, empty, empty, np.zeros((0, dimension), np.float32),
                          np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, bool))
    c, s, a, b, seconds, clean, whole, leaf = (np.array(x) for x in zip(*rows))
    return LocalTurns(c.astype(np.int64), s.astype(np.int64), a.astype(np.int64), b.astype(np.int64),
                      np.stack(vectors), seconds.astype(np.float32), clean.astype(bool), whole.astype(bool),
                      leaf.astype(bool))
