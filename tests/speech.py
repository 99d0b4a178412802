"""Real speech for tests: the workplace's ../shared/data, and conversations built from it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import median_filter
from pyannote.core import Annotation, Segment

DATA = Path(os.environ.get("DIARIZE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SKIP_REASON = (
    f"real-speech data not found at {DATA}: it lives in ../shared/data beside the checkout "
    "(AMI excerpts and LibriSpeech, see the README); set DIARIZE_DATA to point elsewhere"
)


def trim_silence(samples: np.ndarray, sample_rate: int = 16000, floor_db: float = -35.0) -> np.ndarray:
    """Cut leading/trailing audio whose 20 ms frames are more than ``floor_db`` below the loudest frame."""
    hop = sample_rate // 50
    n = len(samples) // hop
    energy = 10 * np.log10(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() + floor_db)
    return samples[loud[0] * hop : (loud[-1] + 1) * hop]


def speech_spans(samples: np.ndarray, sample_rate: int = 16000, rise: float = 0.3, min_pause: float = 0.3):
    """(start, end) seconds of speech inside a clean utterance, used as the reference of simulated audio.

    A 20 ms frame is speech when its energy (median over 100 ms) rises ``rise`` of the way from the
    recording's noise floor (10th percentile) to its speech peak (99th percentile); pauses shorter than
    ``min_pause`` are bridged.
    """
    hop = sample_rate // 50
    n = len(samples) // hop
    energy = 10 * np.log10(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    energy = median_filter(energy, size=5, mode="nearest")
    floor, peak = np.percentile(energy, [10, 99])
    loud = energy > floor + rise * (peak - floor)
    spans: list[list[float]] = []
    for i in np.flatnonzero(loud):
        t = i * hop / sample_rate
        if spans and t - spans[-1][1] < min_pause:
            spans[-1][1] = t + hop / sample_rate
        else:
            spans.append([t, t + hop / sample_rate])
    return [(a, b) for a, b in spans]


def reader_utterances(data_dir: Path, reader: str, count: int) -> list[np.ndarray]:
    """The first ``count`` utterances of a LibriSpeech test-other reader, silence-trimmed, 16 kHz."""
    files = sorted((data_dir / "librispeech" / "test-other" / reader).glob("*.flac"))[:count]
    return [trim_silence(sf.read(f, dtype="float32")[0]) for f in files]


def build_conversation(
    turns: list[tuple[str, np.ndarray]], seed: int = 0, sample_rate: int = 16000
) -> tuple[np.ndarray, Annotation]:
    """Concatenate (speaker, speech) turns with 0.4–1.0 s pauses; returns audio and its reference (speech spans)."""
    rng = np.random.default_rng(seed)
    pieces, reference, cursor = [], Annotation(uri="conversation"), 0
    for speaker, speech in turns:
        gap = int(rng.uniform(0.4, 1.0) * sample_rate)
        pieces.append(np.zeros(gap, dtype=np.float32))
        cursor += gap
        for start, end in speech_spans(speech, sample_rate):
            reference[Segment(cursor / sample_rate + start, cursor / sample_rate + end), len(reference)] = speaker
        pieces.append(speech)
        cursor += len(speech)
    pieces.append(np.zeros(sample_rate // 2, dtype=np.float32))
    return np.concatenate(pieces), reference
