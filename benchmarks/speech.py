"""Signal helpers for building benchmark audio: energy trimming, low-energy cut points, levels, coloured noise."""

from __future__ import annotations

import numpy as np

SR = 16000
FRAME = 320  # 20 ms analysis frame
HOP = 160  # 10 ms hop
MIN_RUN = 3  # frames above threshold that count as speech (30 ms), so clicks are not speech


def frame_db(x: np.ndarray) -> np.ndarray:
    """Frame energies in dB (20 ms frames, 10 ms hop)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, len(x) - FRAME + 1, HOP)
    energy = (cs[starts + FRAME] - cs[starts]) / FRAME
    return 10.0 * np.log10(energy + 1e-12)


def energy_threshold(x: np.ndarray) -> float:
    """Speech/silence threshold of one utterance: 30% of the way from its noise floor to its speech level,
    and at most 35 dB below the speech level."""
    db = frame_db(x)
    level, floor = np.percentile(db, 95), np.percentile(db, 10)
    return float(max(floor + 0.3 * (level - floor), level - 35.0))


def speech_spans(x: np.ndarray, threshold: float, min_pause: float) -> list[tuple[int, int]]:
    """Speech stretches ``[(start, end), ...]`` (samples): runs of 30 ms above ``threshold``, split only at
    pauses of at least ``min_pause`` seconds."""
    active = frame_db(x) > threshold
    if len(active) < MIN_RUN:
        return []
    hits = np.flatnonzero(np.convolve(active.astype(np.int8), np.ones(MIN_RUN, np.int8), "valid") == MIN_RUN)
    if len(hits) == 0:
        return []
    spans: list[tuple[int, int]] = []
    first = prev = int(hits[0])
    for h in hits[1:]:
        h = int(h)
        if h * HOP - ((prev + MIN_RUN - 1) * HOP + FRAME) >= min_pause * SR:
            spans.append((first, prev))
            first = h
        prev = h
    spans.append((first, prev))
    return [(a * HOP, int(min(len(x), (b + MIN_RUN - 1) * HOP + FRAME))) for a, b in spans]


def speech_bounds(x: np.ndarray, threshold: float) -> tuple[int, int] | None:
    """``(start, end)`` samples from the first to the last run of 30 ms above ``threshold``; None if none."""
    spans = speech_spans(x, threshold, np.inf)
    return spans[0] if spans else None


def lowest_energy_point(x: np.ndarray, lo: int, hi: int) -> int:
    """Sample in ``[lo, hi)`` at the centre of the quietest 100 ms of ``x`` (a pause, if there is one)."""
    db = np.convolve(frame_db(x), np.ones(10) / 10, "same")
    f_lo, f_hi = max(0, lo // HOP), max(lo // HOP + 1, min(len(db), hi // HOP))
    best = f_lo + int(np.argmin(db[f_lo:f_hi]))
    return int(np.clip(best * HOP + FRAME // 2, lo, max(lo, hi - 1)))


def active_rms(x: np.ndarray, threshold: float | None = None) -> float:
    """RMS over the frames above the speech threshold (active speech level, linear)."""
    db = frame_db(x)
    thr = energy_threshold(x) if threshold is None else threshold
    active = db[db > thr]
    if len(active) == 0:
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))
    return float(np.sqrt(np.mean(10.0 ** (active / 10.0))))


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ``1/f**exponent`` (1: pink, 2: brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n)
    noise -= noise.mean()
    return (noise / max(np.sqrt(np.mean(noise**2)), 1e-12)).astype(np.float32)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))
