"""Deterministic stand-ins for the voiceprint tests: tone "voices", an energy VAD and a fake diarizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diarize.embeddings.base import EmbeddingBackend
from diarize.result import Result, Speaker
from diarize.voiceprints import Calibration

SR = 16000
DIM = 16

#: Thresholds for the tone backend: distinct tones score ~0, the same tone ~0.99.
CALIBRATION = Calibration(model_id="fake-tone", identify=0.8, link=0.8, link_member=0.7, consistency=0.5,
                          separation=0.75, confidence_a=20.0, confidence_b=-16.0)


def voice_vector(freq: float) -> np.ndarray:
    """The unit vector the tone backend gives a tone of ``freq`` Hz."""
    rng = np.random.default_rng(int(round(freq)))
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class ToneBackend(EmbeddingBackend):
    """Embeds each window as the vector of its dominant frequency (rounded to 10 Hz), plus a little noise."""

    model_id = "fake-tone"
    dimension = DIM

    def embed_windows(self, samples: np.ndarray, starts: np.ndarray, ends: np.ndarray, progress=None,
                      gain: float = 1.0) -> np.ndarray:  # a tone's frequency does not depend on the gain
        out = np.zeros((len(starts), DIM), np.float32)
        for i, (s, e) in enumerate(zip(starts, ends)):
            seg = samples[s:e]
            spectrum = np.abs(np.fft.rfft(seg))
            freq = np.fft.rfftfreq(len(seg), 1 / SR)[int(np.argmax(spectrum))]
            v = voice_vector(round(freq / 10) * 10) + np.random.default_rng(int(s)).normal(0, 0.02, DIM)
            out[i] = v / np.linalg.norm(v)
        return out


def energy_vad(samples: np.ndarray) -> list[tuple[float, float]]:
    """Regions (s) where 20 ms frames are louder than -40 dBFS."""
    hop = SR // 50
    n = len(samples) // hop
    loud = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1)) > 0.01
    regions, start = [], None
    for i, on in enumerate(np.append(loud, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            regions.append((start * hop / SR, i * hop / SR))
            start = None
    return regions


def tone(freq: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speaker(label: str, freq: float, talk_time: float = 10.0, noise: float = 0.0, seed: int = 0) -> Speaker:
    """A diarized speaker whose centroid is the tone voice ``freq``, optionally perturbed."""
    v = voice_vector(freq) + np.random.default_rng(seed).normal(0, noise, DIM)
    return Speaker(label, talk_time, 3, (v / np.linalg.norm(v)).astype(np.float32))


def result(*speakers: Speaker) -> Result:
    return Result(utterances=[], speakers=list(speakers), duration=60.0, model="fake-tone")


class FakeDiarizer:
    """Returns a fixed Result whatever the audio; records how often it was called."""

    def __init__(self, res: Result) -> None:
        self.res, self.calls = res, 0

    def __call__(self, audio: object) -> Result:
        self.calls += 1
        return self.res


class FrameToneBackend(ToneBackend):
    """A tone backend that, like CAM++, embeds filterbank segments of any length (``embed_features``).

    Its "filterbank" is each 25 ms frame's dominant frequency (every 10 ms); a segment's vector is the
    normalised mean of its frames' tone vectors, so a segment mixing two tones scores below 1 with both.
    Every call to ``embed_features`` is recorded (the segments' frequencies).
    """

    HOP, WINDOW = 160, 400

    def __init__(self) -> None:
        self.calls: list[list[np.ndarray]] = []

    def features(self, samples: np.ndarray, gain: float = 1.0) -> np.ndarray:
        n = 0 if len(samples) < self.WINDOW else 1 + (len(samples) - self.WINDOW) // self.HOP
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.WINDOW)[:: self.HOP][:n]
        spectrum = np.abs(np.fft.rfft(frames * np.hanning(self.WINDOW), axis=1))
        freq = np.fft.rfftfreq(self.WINDOW, 1 / SR)[np.argmax(spectrum, axis=1)]
        return (np.round(freq / 40) * 40)[:, None].astype(np.float32)  # bins of 40 Hz

    def window_frames(self, starts: np.ndarray, ends: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        first = np.clip(-(-np.asarray(starts) // self.HOP), 0, max(n_frames - 1, 0))
        last = np.clip((np.asarray(ends) - self.WINDOW) // self.HOP + 1, first + 1, n_frames)
        return first, last - first

    def embed_features(self, segments, progress=None) -> np.ndarray:
        self.calls.append([np.asarray(s)[:, 0] for s in segments])
        out = np.zeros((len(segments), DIM), np.float32)
        for i, seg in enumerate(segments):
            v = np.mean([voice_vector(f) for f in np.asarray(seg)[:, 0]], axis=0)
            out[i] = v / np.linalg.norm(v)
        return out


def traces(root: Path, needles: list[bytes]) -> int:
    """How many of ``needles`` (a deleted vector's float32 bytes, a name) occur in any file under ``root``."""
    blobs = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            blobs.append(data[:len(data.rstrip(b"\0")) + 64])  # the stores preallocate zeroed files
    return sum(any(n in b for b in blobs) for n in needles)
