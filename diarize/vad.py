"""Voice activity detection with Silero VAD (weights ship in the ``silero-vad`` wheel)."""

from __future__ import annotations

import numpy as np
import torch

from .config import VADConfig

_CHUNK = 512  # Silero's frame at 16 kHz: 32 ms
_SAMPLE_RATE = 16000


def loudness_gain(samples: np.ndarray, target_rms_dbfs: float = -23.0, max_gain_db: float = 40.0) -> float:
    """Linear gain (>= 1) that brings loud speech (99th percentile of 32 ms frame RMS) near ``target_rms_dbfs``.

    Quiet recordings (e.g. -40 dBFS meeting mixes) otherwise lose speech in the VAD. Never attenuates.
    """
    n_frames = len(samples) // _CHUNK
    if n_frames == 0:
        return 1.0
    frames = samples[: n_frames * _CHUNK].reshape(n_frames, _CHUNK)
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / _CHUNK)
    speech_level = float(np.percentile(rms, 99))
    if speech_level <= 1e-7:
        return 1.0
    return float(10 ** (max(0.0, min(max_gain_db, target_rms_dbfs - 20 * np.log10(speech_level))) / 20))


class SileroVAD:
    """Speech regions of a 16 kHz mono signal.

    Long signals are cut into parallel streams run as one batch (each stream warmed up on the
    second before it), which makes Silero's sequential model about 20x faster on a CPU.
    """

    frame_duration = _CHUNK / _SAMPLE_RATE

    def __init__(self, config: VADConfig = VADConfig(), stream_seconds: float = 10.0, warmup_seconds: float = 3.0):
        from silero_vad import load_silero_vad

        self.config = config
        self.model = load_silero_vad()
        self.stream_chunks = int(stream_seconds * _SAMPLE_RATE) // _CHUNK
        self.warmup_chunks = int(warmup_seconds * _SAMPLE_RATE) // _CHUNK

    @torch.inference_mode()
    def speech_probabilities(self, samples: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """One speech probability per 32 ms chunk of ``samples``, scaled by ``gain`` and clipped on the fly
        (hours of audio are never copied)."""
        n_chunks = -(-len(samples) // _CHUNK)
        if n_chunks == 0:
            return np.zeros(0, dtype=np.float32)
        full = len(samples) // _CHUNK
        body = samples[: full * _CHUNK].reshape(full, _CHUNK)
        tail = np.zeros(_CHUNK, dtype=np.float32)
        tail[: len(samples) - full * _CHUNK] = samples[full * _CHUNK :]
        n_streams = -(-n_chunks // self.stream_chunks)
        starts = np.arange(n_streams) * self.stream_chunks
        warm = np.minimum(starts, self.warmup_chunks)
        steps = self.stream_chunks + int(warm.max())
        probs = np.zeros(n_chunks, dtype=np.float32)
        self.model.reset_states()
        batch = np.zeros((n_streams, _CHUNK), dtype=np.float32)
        for step in range(steps):
            index = starts - warm + step
            valid = index < np.minimum(starts + self.stream_chunks, n_chunks)
            batch[:] = 0.0
            rows = np.flatnonzero(valid & (index < full))
            batch[rows] = body[index[rows]]
            batch[valid & (index == full)] = tail
            if gain != 1.0:
                np.clip(batch * np.float32(gain), -1.0, 1.0, out=batch)
            out = self.model(torch.from_numpy(batch), _SAMPLE_RATE).numpy().reshape(-1)
            keep = valid & (step >= warm)
            probs[index[keep]] = out[keep]
        self.model.reset_states()
        return probs

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Speech regions as a ``(k, 2)`` float array of [start, end] seconds, sorted, non-overlapping."""
        gain = loudness_gain(samples, self.config.target_rms_dbfs) if self.config.normalize_loudness else 1.0
        probs = self.speech_probabilities(samples, gain)
        return regions_from_probabilities(probs, self.frame_duration, len(samples) / _SAMPLE_RATE, self.config)


def regions_from_probabilities(probs: np.ndarray, frame: float, duration: float, config: VADConfig) -> np.ndarray:
    """Hysteresis thresholding, then bridging short pauses, dropping short bursts and padding."""
    on = config.threshold
    off = config.neg_threshold if config.neg_threshold is not None else max(on - 0.15, 0.01)
    regions: list[list[float]] = []
    active = False
    start = 0
    for i, p in enumerate(probs):
        if not active and p >= on:
            active, start = True, i
        elif active and p < off:
            active = False
            regions.append([start * frame, i * frame])
    if active:
        regions.append([start * frame, len(probs) * frame])
    merged: list[list[float]] = []
    for region in regions:
        if merged and region[0] - merged[-1][1] < config.min_silence:
            merged[-1][1] = region[1]
        else:
            merged.append(region)
    kept = [r for r in merged if r[1] - r[0] >= config.min_speech]
    out = np.array(kept, dtype=np.float64).reshape(-1, 2)
    if len(out):
        out[:, 0] = np.maximum(out[:, 0] - config.speech_pad, 0.0)
        out[:, 1] = np.minimum(out[:, 1] + config.speech_pad, duration)
        # Padding can make neighbours touch: keep regions disjoint.
        out[1:, 0] = np.maximum(out[1:, 0], out[:-1, 1])
    return out
