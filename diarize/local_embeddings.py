"""One speaker embedding per (chunk, local speaker), from that speaker's frames where nobody else speaks.

The filterbank of the whole file is computed once; each local speaker's embedding is computed from the
filterbank frames under its clean (single-speaker) segmentation frames, or under all its frames when it has
less than ``min_clean`` seconds of clean speech (then it is marked not clean: it does not shape the clusters,
it is only assigned to one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

FBANK_HOP = 0.010  # s between filterbank frames
FBANK_WINDOW = 0.025


@dataclass(frozen=True)
class LocalEmbeddings:
    """``embeddings[c, s]`` (NaN where local speaker s is silent in chunk c), the seconds of clean speech
    behind each, and whether it was computed from clean speech alone."""

    embeddings: np.ndarray
    clean_seconds: np.ndarray
    clean: np.ndarray


def fbank_frames_of(activity: np.ndarray, chunk_start: float, frame_step: float, frame_duration: float,
                    n_fbank: int) -> tuple[int, np.ndarray]:
    """Map a chunk's segmentation frames ``(frames, local)`` onto the file's filterbank frames.

    Returns the first filterbank frame of the chunk and, for each filterbank frame of the chunk, the
    segmentation frame whose centre is nearest to its centre.
    """
    frames = len(activity)
    first = max(int(np.ceil((chunk_start) / FBANK_HOP)), 0)
    last = min(int((chunk_start + (frames - 1) * frame_step + frame_duration - FBANK_WINDOW) / FBANK_HOP) + 1, n_fbank)
    centres = np.arange(first, max(last, first)) * FBANK_HOP + FBANK_WINDOW / 2
    index = np.rint((centres - chunk_start - frame_duration / 2) / frame_step).astype(np.int64)
    return first, np.clip(index, 0, frames - 1)


def embed_local_speakers(
    activity: np.ndarray,
    chunk_starts: np.ndarray,
    frame_step: float,
    frame_duration: float,
    features: np.ndarray,
    embed: Callable[[list[np.ndarray]], np.ndarray],
    dimension: int,
    min_clean: float,
    min_frames: int = 20,
    block_segments: int = 256,
    progress: Callable[[float], None] | None = None,
) -> LocalEmbeddings:
    """Embed every active local speaker of every chunk (``activity``: ``(chunks, frames, local)``, 0/1).

    ``features``: the file's filterbank ``(n, bins)`` at :data:`FBANK_HOP`; ``embed``: list of ``(t, bins)``
    arrays → unit vectors, called with ``block_segments`` at a time (bounded memory). Local speakers with fewer
    than ``min_frames`` filterbank frames are left silent.
    """
    chunks, _, local = activity.shape
    out = np.full((chunks, local, dimension), np.nan, dtype=np.float32)
    clean_seconds = np.zeros((chunks, local), dtype=np.float32)
    clean = np.zeros((chunks, local), dtype=bool)
    segments: list[np.ndarray] = []
    where: list[tuple[int, int]] = []

    def flush() -> None:
        if segments:
            rows, cols = np.array(where).T
            out[rows, cols] = embed(segments)
            segments.clear()
            where.clear()

    for c in range(chunks):
        act = activity[c] > 0
        if act.any():
            first, index = fbank_frames_of(act, float(chunk_starts[c]), frame_step, frame_duration, len(features))
            alone = act.sum(axis=1) == 1
            block = features[first:first + len(index)]
            for s in np.flatnonzero(act.any(axis=0)):
                own = act[index, s]
                only = own & alone[index]
                clean_seconds[c, s] = only.sum() * FBANK_HOP
                clean[c, s] = clean_seconds[c, s] >= min_clean
                use = only if clean[c, s] else own
                if use.sum() >= min_frames:
                    segments.append(block[use])
                    where.append((c, s))
        if len(segments) >= block_segments or c == chunks - 1:
            flush()
            if progress:
                progress((c + 1) / chunks)
    return LocalEmbeddings(out, clean_seconds, clean)
