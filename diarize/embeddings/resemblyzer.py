"""Resemblyzer's GE2E speaker encoder (weights bundled in the ``resemblyzer`` wheel)."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch

from ..errors import ModelError
from .base import EmbeddingBackend

_HOP = 160  # 10 ms mel frames at 16 kHz, as GE2E was trained
_N_FFT = 400


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): elsewhere emulating it is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class ResemblyzerBackend(EmbeddingBackend):
    """GE2E (3-layer LSTM, 256-d) on 40-band mel frames.

    The mel spectrogram is computed once for the whole signal and windows are slices of it, so
    overlapping windows cost no extra feature extraction; windows run through the LSTM in batches.
    """

    model_id = "resemblyzer-ge2e"
    dimension = 256

    def __init__(
        self, weights: str | None = None, device: str = "cpu", batch_size: int = 128, precision: str = "float32"
    ):
        try:
            with warnings.catch_warnings():
                # resemblyzer's webrtcvad dependency imports the deprecated pkg_resources.
                warnings.simplefilter("ignore", UserWarning)
                from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise ModelError(f"cannot import resemblyzer: {exc}") from exc
        try:
            self.encoder = VoiceEncoder(device=device, verbose=False, weights_fpath=weights)
        except Exception as exc:
            raise ModelError(f"cannot load GE2E weights {weights or '(bundled)'}: {exc}") from exc
        self.encoder.eval()
        self.batch_size = batch_size
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and device == "cpu" and native_bfloat16())

    def mel_frames(self, samples: np.ndarray, block_frames: int = 60000) -> np.ndarray:
        """Power mel spectrogram ``(frames, 40)``, frame i centred on sample ``i * 160``; computed in blocks."""
        import librosa

        n = len(samples)
        n_frames = n // _HOP + 1
        out = np.empty((n_frames, 40), dtype=np.float32)
        for first in range(0, n_frames, block_frames):
            last = min(first + block_frames, n_frames)
            lo, hi = first * _HOP - _N_FFT // 2, (last - 1) * _HOP + _N_FFT // 2
            segment = np.pad(samples[max(lo, 0) : min(hi, n)], (max(-lo, 0), max(hi - n, 0)))
            mel = librosa.feature.melspectrogram(
                y=segment, sr=16000, n_fft=_N_FFT, hop_length=_HOP, n_mels=40, center=False
            )
            out[first:last] = mel.T[: last - first]
        return out

    @torch.inference_mode()
    def embed_windows(
        self,
        samples: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        progress: Callable[[float], None] | None = None,
        gain: float = 1.0,
    ) -> np.ndarray:
        if len(starts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        mel = self.mel_frames(samples)
        if gain != 1.0:
            mel *= np.float32(gain * gain)  # a power spectrogram
        first = np.clip(starts // _HOP, 0, len(mel) - 1)
        length = np.clip(ends // _HOP, first + 1, len(mel)) - first
        out = np.empty((len(starts), self.dimension), dtype=np.float32)
        order = np.argsort(-length, kind="stable")
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            lengths = length[idx]
            batch = np.zeros((len(idx), int(lengths.max()), 40), dtype=np.float32)
            for row, i in enumerate(idx):
                batch[row, : length[i]] = mel[first[i] : first[i] + length[i]]
            x = torch.from_numpy(batch)
            if lengths.min() != lengths.max():
                x = torch.nn.utils.rnn.pack_padded_sequence(x, torch.from_numpy(lengths), batch_first=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
                out[idx] = self.encoder(x).float().numpy()
            if progress:
                progress(min(b + self.batch_size, len(order)) / len(order))
        return out
