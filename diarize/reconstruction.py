"""From clustered local turns back to one timeline: per frame, how many speak and which ones.

Each chunk's local activity is mapped to the file's speakers, averaged over the overlapping chunks (Hann
weights: a chunk is least sure near its edges) and, at every frame, the speakers with the highest scores are
kept, as many as the chunks say are speaking there (0, 1 or 2). So two speakers may hold one instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ReconstructionConfig
from .local_embeddings import LocalTurns
from .vad import fit_to_sound


@dataclass(frozen=True)
class Timeline:
    """Frame-level result: ``active[g, k]`` whether speaker k speaks in frame g, ``score`` the averaged
    activity behind it; frame g is centred at ``offset + g * step`` seconds."""

    active: np.ndarray
    score: np.ndarray
    step: float
    offset: float

    @property
    def times(self) -> np.ndarray:
        """Centre of every frame (s)."""
        return self.offset + np.arange(len(self.active)) * self.step

    def filled(self, regions: np.ndarray) -> "Timeline":
        """This timeline with every frame inside ``regions`` (``(n, 2)`` seconds, speech found by another
        detector) given a speaker where none speaks: the best-scoring one, else that of the nearest frame with
        speech."""
        times = self.times
        inside = np.zeros(len(times), dtype=bool)
        for start, end in regions:
            inside[np.searchsorted(times, start):np.searchsorted(times, end)] = True
        active = self.active.copy()
        if not active.shape[1]:
            return self
        need = np.flatnonzero(inside & ~active.any(axis=1) & (self.score.max(axis=1) > 0))
        active[need, np.argmax(self.score[need], axis=1)] = True
        still = np.flatnonzero(inside & ~active.any(axis=1))
        speech = np.flatnonzero(active.any(axis=1))
        if len(still) and len(speech):
            after = np.clip(np.searchsorted(speech, still), 0, len(speech) - 1)
            before = np.maximum(after - 1, 0)
            nearest = np.where(np.abs(speech[after] - still) < np.abs(speech[before] - still),
                               speech[after], speech[before])
            active[still] = active[nearest]
        return Timeline(active, self.score, self.step, self.offset)

    def turns(self, config: ReconstructionConfig = ReconstructionConfig(), exclusive: bool = False
              ) -> list[tuple[int, float, float]]:
        """``(speaker, start, end)`` runs of speech, short pauses bridged and short blips dropped, time-ordered.

        With ``exclusive`` only the highest-scoring active speaker holds each frame.
        """
        active = self.active
        if exclusive and active.shape[1]:
            top = np.argmax(np.where(active, self.score, -np.inf), axis=1)
            active = np.zeros_like(active)
            speaking = self.active.any(axis=1)
            active[np.flatnonzero(speaking), top[speaking]] = True
        out: list[tuple[int, float, float]] = []
        for k in range(active.shape[1]):
            for first, last in _runs(active[:, k]):
                out.append((k, self.offset + (first - 0.5) * self.step, self.offset + (last + 0.5) * self.step))
        out = _bridge(out, config.min_duration_off)
        out = [t for t in out if t[2] - t[1] >= config.min_duration_on]
        return sorted(((k, max(a, 0.0), b) for k, a, b in out), key=lambda t: (t[1], t[0]))


def fitted_to_sound(turns: list[tuple[int, float, float]], energies_db: np.ndarray, config: ReconstructionConfig
                    ) -> list[tuple[int, float, float]]:
    """``(speaker, start, end)`` turns with quiet edges trimmed and pauses of ``config.min_pause`` or more cut out
    (:func:`diarize.vad.fit_to_sound`), time-ordered.

    segmentation-3.0 draws speech as its annotators did, on past the last word and over half-second pauses; the
    signal's energy places those edges to 10 ms (sim tuning split: false alarm 5.0% -> 1.9%).
    """
    if config.min_pause is None or not turns:
        return turns
    pieces = fit_to_sound(np.array([t[1:] for t in turns]), energies_db, config.min_pause, config.pause_floor_window,
                          config.pause_level, config.pause_depth_db)
    kept = ((turns[i][0], a, b) for i, a, b in pieces if b - a >= config.min_duration_on)
    return sorted(kept, key=lambda t: (t[1], t[0]))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """First and last index of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def _bridge(turns: list[tuple[int, float, float]], gap: float) -> list[tuple[int, float, float]]:
    """Join a speaker's consecutive turns separated by less than ``gap`` seconds."""
    out: list[tuple[int, float, float]] = []
    for k, a, b in sorted(turns):
        if out and out[-1][0] == k and a - out[-1][2] < gap:
            out[-1] = (k, out[-1][1], max(b, out[-1][2]))
        else:
            out.append((k, a, b))
    return out


def reconstruct(
    activity: np.ndarray,
    chunk_starts: np.ndarray,
    frame_step: float,
    frame_duration: float,
    duration: float,
    turns: LocalTurns,
    labels: np.ndarray,
    num_speakers: int,
) -> Timeline:
    """The file's timeline from chunk activity ``(chunks, frames, local)`` (0/1) and each local turn's global
    speaker ``labels`` (-1: none).

    Frames of different chunks are aligned on one grid of ``frame_step``; every grid frame gets the
    Hann-weighted mean of the chunks covering it, for each speaker and for the number of speakers, which is
    rounded to give how many speakers the frame keeps.
    """
    chunks, frames, _ = activity.shape
    n_grid = max(int(np.ceil(duration / frame_step)), 1)
    k_all = max(num_speakers, 0)
    score = np.zeros((n_grid, k_all), dtype=np.float64)
    count = np.zeros(n_grid, dtype=np.float64)
    weight = np.zeros(n_grid, dtype=np.float64)
    hann = np.hanning(frames + 2)[1:-1]
    by_chunk = np.argsort(turns.chunk, kind="stable")
    bounds = np.searchsorted(turns.chunk[by_chunk], np.arange(chunks + 1))
    for c in range(chunks):
        first = int(round(chunk_starts[c] / frame_step))
        n = min(frames, n_grid - first)
        if n <= 0:
            continue
        rows = slice(first, first + n)
        w = hann[:n]
        act = activity[c, :n].astype(np.float64)
        weight[rows] += w
        count[rows] += w * act.sum(axis=1)
        mapped = np.zeros((n, k_all))
        for t in by_chunk[bounds[c]:bounds[c + 1]]:
            k, a, b = labels[t], turns.first[t], min(turns.last[t], n)
            if k >= 0 and b > a:
                # Two turns given one speaker at once (only with more local speakers than speakers) count once.
                np.maximum(mapped[a:b, k], act[a:b, turns.speaker[t]], out=mapped[a:b, k])
        score[rows] += w[:, None] * mapped
    covered = weight > 0
    score[covered] /= weight[covered, None]
    count[covered] /= weight[covered]
    keep = np.minimum(np.round(count).astype(np.int64), num_speakers)
    active = np.zeros_like(score, dtype=bool)
    if num_speakers:
        order = np.argsort(-score, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(num_speakers)[None, :].repeat(n_grid, axis=0), axis=1)
        active = (ranks < keep[:, None]) & (score > 0)
    return Timeline(active, score.astype(np.float32), frame_step, frame_duration / 2)
