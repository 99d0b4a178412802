"""Simulated conversations: real utterances cut into trimmed turns, placed with pauses and overlaps, exact reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
from pyannote.core import Annotation, Segment

from .librispeech import Corpus
from .speech import SR, coloured_noise, db_to_gain, lowest_energy_point, speech_bounds, speech_spans

TURN_SECONDS = (1.5, 8.0)  # turn lengths cut from utterances
BACKCHANNEL_SECONDS = (0.3, 1.0)
BACKCHANNEL_PROB = 0.2  # share of utterances that give a backchannel from their first words
GAP_SECONDS = (0.2, 1.5)
OVERLAP_RATE = (0.05, 0.15)  # share of turns that start before the previous one ends
MAX_OVERLAP = 1.5
FLOOR_DB = -50.0  # room-tone floor relative to the speech level, on every file
NOISE_SNR_DB = (10.0, 30.0)
MIN_PAUSE = 0.5  # pauses this long inside a turn are silence in the reference; shorter ones count as speech


@dataclass(frozen=True)
class Piece:
    """Trimmed speech ``[start, end)`` (samples) of one utterance; ``spans`` are its speech stretches
    (split at pauses of ``MIN_PAUSE`` or more), the first starting at ``start``, the last ending at ``end``."""

    uid: str
    start: int
    end: int
    backchannel: bool = False
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SR

    @property
    def speech_seconds(self) -> float:
        return sum(e - s for s, e in self.spans) / SR


@dataclass(frozen=True)
class Turn:
    speaker: str
    piece: Piece
    onset: int  # samples
    overlap: bool

    @property
    def end(self) -> int:
        return self.onset + self.piece.end - self.piece.start


def _trimmed(audio: np.ndarray, thr: float, uid: str, a: int, b: int, backchannel: bool = False) -> Piece | None:
    spans = speech_spans(audio[a:b], thr, MIN_PAUSE)
    if not spans:
        return None
    return Piece(uid, a + spans[0][0], a + spans[-1][1], backchannel, tuple((a + s, a + e) for s, e in spans))


def cut_pieces(corpus: Corpus, uid: str, rng: np.random.Generator, backchannel: bool) -> list[Piece]:
    """Trim one utterance and cut it at low-energy points into turns (optionally a backchannel first)."""
    audio, thr = corpus.load(uid)
    bounds = speech_bounds(audio, thr)
    if bounds is None:
        return []
    pos, end = bounds
    pieces: list[Piece] = []
    if backchannel and end - pos > 3 * SR:
        lo, hi = (int(s * SR) for s in BACKCHANNEL_SECONDS)
        cut = lowest_energy_point(audio, pos + lo, pos + hi)
        bc = _trimmed(audio, thr, uid, pos, cut, True)
        if bc is None or bc.end - bc.start < lo:
            bc = Piece(uid, pos, max(cut, pos + lo), True, ((pos, max(cut, pos + lo)),))
        pieces.append(bc)
        pos = bc.end
    lo_turn, hi_turn = TURN_SECONDS
    while end - pos > hi_turn * SR:
        target = pos + int(rng.uniform(lo_turn + 0.5, hi_turn - 0.5) * SR)
        lo = max(pos + SR, target - int(0.75 * SR))
        hi = min(end - SR, target + int(0.75 * SR))
        cut = lowest_energy_point(audio, lo, hi)
        piece = _trimmed(audio, thr, uid, pos, cut)
        if piece is not None and piece.seconds >= 0.3:
            pieces.append(piece)
        pos = cut
    last = _trimmed(audio, thr, uid, pos, end)
    if last is not None and last.seconds >= 0.3:
        pieces.append(last)
    return pieces


def speaker_pieces(corpus: Corpus, uids: Iterable[str], rng: np.random.Generator) -> list[Piece]:
    pieces: list[Piece] = []
    for uid in uids:
        pieces.extend(cut_pieces(corpus, uid, rng, bool(rng.random() < BACKCHANNEL_PROB)))
    return pieces


def speaker_sequence(queues: dict[str, list[Piece]], rng: np.random.Generator) -> list[tuple[str, Piece]]:
    """Draw who talks next (not the last speaker when anyone else has material left), weighted by material left."""
    left = {spk: list(pieces) for spk, pieces in queues.items()}
    order: list[tuple[str, Piece]] = []
    prev: str | None = None
    while any(left.values()):
        cands = [s for s in sorted(left) if left[s] and s != prev] or [s for s in sorted(left) if left[s]]
        weights = np.array([sum(p.seconds for p in left[s]) for s in cands])
        spk = cands[int(rng.choice(len(cands), p=weights / weights.sum()))]
        order.append((spk, left[spk].pop(0)))
        prev = spk
    return order


def choose_overlaps(order: list[tuple[str, Piece]], rng: np.random.Generator) -> list[bool]:
    """Mark 5-15% of the turns (only at speaker changes) as starting before the previous turn ends."""
    n = len(order)
    eligible = [i for i in range(1, n) if order[i][0] != order[i - 1][0]]
    flags = [False] * n
    if not eligible:
        return flags
    want = int(round(rng.uniform(*OVERLAP_RATE) * n))
    want = int(np.clip(want, np.ceil(OVERLAP_RATE[0] * n), max(1, np.floor(OVERLAP_RATE[1] * n))))
    for i in rng.choice(eligible, size=min(want, len(eligible)), replace=False):
        flags[int(i)] = True
    return flags


def place(turns: Iterable[tuple[str, Piece, bool]], rng: np.random.Generator,
          stop_at: float | None = None) -> list[Turn]:
    """Lay turns on a timeline: a pause after the previous turn, or an overlap of its last 0.2-1.5 s."""
    placed: list[Turn] = []
    cursor = int(rng.uniform(0.3, 1.0) * SR)
    for speaker, piece, overlap in turns:
        if stop_at is not None and cursor >= stop_at * SR:
            break
        dur = piece.end - piece.start
        prev = placed[-1] if placed else None
        hi = 0.0 if prev is None else min(MAX_OVERLAP * SR, 0.5 * (prev.end - prev.onset), dur - 0.1 * SR)
        overlap = overlap and prev is not None and prev.speaker != speaker and hi >= 0.1 * SR
        if overlap:
            onset = cursor - int(rng.uniform(min(0.2 * SR, hi), hi))
        else:
            onset = cursor + int(rng.uniform(*GAP_SECONDS) * SR)
        placed.append(Turn(speaker, piece, onset, overlap))
        cursor = max(cursor, onset + dur)
    return placed


def reference(turns: list[Turn], uri: str, speakers: Iterable[str] | None = None) -> Annotation:
    """Exact reference: one segment per speech stretch of each placed turn (optionally only some speakers)."""
    keep = None if speakers is None else set(speakers)
    ann = Annotation(uri=uri)
    for i, t in enumerate(turns):
        if keep is None or t.speaker in keep:
            for j, (s, e) in enumerate(t.piece.spans):
                shift = t.onset - t.piece.start
                ann[Segment((s + shift) / SR, (e + shift) / SR), f"{i}.{j}"] = t.speaker
    return ann


def render(corpus: Corpus, turns: list[Turn], n_samples: int, gains: dict[str, float], offset: int = 0) -> np.ndarray:
    """Mix the turns that fall in ``[offset, offset + n_samples)``."""
    out = np.zeros(n_samples, dtype=np.float32)
    for t in turns:
        a, b = t.onset - offset, t.end - offset
        if b <= 0 or a >= n_samples:
            continue
        audio, _ = corpus.load(t.piece.uid)
        seg = audio[t.piece.start : t.piece.end] * gains[t.speaker]
        lo, hi = max(a, 0), min(b, n_samples)
        out[lo:hi] += seg[lo - a : hi - a]
    return out


def add_noise(x: np.ndarray, rng: np.random.Generator, rel_db: float, exponent: float, speech_rms: float) -> np.ndarray:
    """Add coloured noise ``rel_db`` relative to ``speech_rms`` (negative ``rel_db`` = below speech)."""
    return x + coloured_noise(len(x), rng, exponent) * (speech_rms * db_to_gain(rel_db))


def speech_rms(x: np.ndarray, ref: Annotation) -> float:
    """RMS of the signal over the reference speech."""
    parts = [x[int(s.start * SR) : int(s.end * SR)] for s in ref.get_timeline().support()]
    cat = np.concatenate(parts) if parts else x
    return float(np.sqrt(np.mean(np.square(cat, dtype=np.float64)) + 1e-20))


def cycle(pieces: list[Piece], rng: np.random.Generator) -> Iterator[Piece]:
    """Endless reshuffled passes over a speaker's pieces (for the long files, where reuse is unavoidable)."""
    while True:
        for i in rng.permutation(len(pieces)):
            yield pieces[int(i)]
