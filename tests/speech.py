"""Real speech for tests: the workplace's ../shared/data, and conversations built from it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
from pyannote.core import Annotation, Segment

from benchmarks.simulate import MIN_PAUSE
from benchmarks.speech import energy_threshold, speech_bounds
from benchmarks.speech import speech_spans as benchmark_speech_spans

DATA = Path(os.environ.get("DIARIZE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SKIP_REASON = (
    f"real-speech data not found at {DATA}: it lives in ../shared/data beside the checkout "
    "(AMI excerpts and LibriSpeech, see the README); set DIARIZE_DATA to point elsewhere"
)


def trim_silence(samples: np.ndarray) -> np.ndarray:
    """The utterance from its first to its last speech (the benchmark simulator's energy rule)."""
    bounds = speech_bounds(samples, energy_threshold(samples))
    return samples[bounds[0] : bounds[1]] if bounds else samples[:0]


def speech_spans(samples: np.ndarray, sample_rate: int = 16000) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in a clean utterance, split at pauses of 0.5 s or more: the same
    reference rule as the benchmark's simulated conversations."""
    spans = benchmark_speech_spans(samples, energy_threshold(samples), MIN_PAUSE)
    return [(a / sample_rate, b / sample_rate) for a, b in spans]


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


def two_reader_conversation(data_dir: Path) -> np.ndarray:
    """Readers 2033 and 3080 taking two turns each: the short two-speaker recording of the CLI and API tests."""
    a, b = reader_utterances(data_dir, "2033", 2), reader_utterances(data_dir, "3080", 2)
    return build_conversation([("a", a[0]), ("b", b[0]), ("a", a[1]), ("b", b[1])])[0]
