"""SpeechBrain's ECAPA-TDNN speaker encoder (``speechbrain/spkrec-ecapa-voxceleb``), an optional backend.

SpeechBrain is imported here only, when a backend is built: the core package works without it.
Install it with ``scripts/install-ecapa.sh`` (the ``ecapa`` extra plus a torchaudio fix-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import ModelError
from ..models import verify_checksum
from .base import EmbeddingBackend

HUB_ID = "speechbrain/spkrec-ecapa-voxceleb"
_INSTALL_HINT = "install the ecapa extra: scripts/install-ecapa.sh (see models/README.md)"
_MIN_SAMPLES = 1600  # 0.1 s: ECAPA's reflect-padded dilated convolutions need a few frames
_MAX_PAD = 160  # one 10 ms fbank hop


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~", "\\")) or (len(source) > 1 and source[1] == ":")


class EcapaBackend(EmbeddingBackend):
    """ECAPA-TDNN (192-d) trained on VoxCeleb 1+2, run through SpeechBrain's own feature pipeline.

    ``source`` is the hub id (default) or a local directory laid out like the hub repository
    (hyperparams.yaml, embedding_model.ckpt, mean_var_norm_emb.ckpt, classifier.ckpt, label_encoder.txt).
    A local directory is read in place: its hyperparams' ``pretrained_path`` is pointed at it, so the
    published hyperparams.yaml works unmodified and nothing is fetched from the network.
    ``sha256``, when given, must match embedding_model.ckpt: checked before loading a local directory,
    right after fetching from the hub. ``allow_network=False`` uses only the local Hugging Face cache.
    """

    model_id = HUB_ID
    dimension = 192

    def __init__(
        self,
        source: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        *,
        savedir: str | Path | None = None,
        sha256: str | None = None,
        allow_network: bool = True,
    ):
        try:
            from speechbrain.inference.speaker import EncoderClassifier
            from speechbrain.utils.fetching import FetchConfig
        except ImportError as exc:
            raise ModelError(f"the ECAPA backend needs speechbrain ({exc}); {_INSTALL_HINT}") from exc
        except OSError as exc:
            raise ModelError(f"speechbrain failed to import ({exc}); {_INSTALL_HINT}") from exc

        source = str(source) if source is not None else HUB_ID
        local = Path(source).expanduser()
        kwargs: dict = {"run_opts": {"device": device}, "fetch_config": FetchConfig(allow_network=allow_network)}
        if local.is_dir():
            if not (local / "hyperparams.yaml").is_file():
                raise ModelError(f"ECAPA source {local} has no hyperparams.yaml")
            source = str(local.resolve())
            kwargs.update(overrides={"pretrained_path": source}, overrides_must_match=False)
            if sha256 is not None:
                verify_checksum(local / "embedding_model.ckpt", sha256)
        elif _looks_like_path(source):
            raise ModelError(f"ECAPA source directory {source} does not exist")
        if savedir is not None:
            kwargs["savedir"] = str(savedir)

        try:
            self.classifier = EncoderClassifier.from_hparams(source=source, **kwargs)
        except Exception as exc:
            raise ModelError(
                f"cannot load ECAPA model from {source!r}: {type(exc).__name__}: {exc}. "
                "Offline? Copy the model card's files into a directory and pass it as source (models/README.md)."
            ) from exc
        self.classifier.eval()
        self.checkpoint = Path(self.classifier.hparams.pretrainer.paths["embedding_model"])
        if sha256 is not None and not local.is_dir():
            verify_checksum(self.checkpoint, sha256)
        self._check_checkpoint_covers_model()
        self.source = source
        self.batch_size = batch_size

    def _check_checkpoint_covers_model(self) -> None:
        """SpeechBrain loads checkpoints with ``strict=False``; refuse one that leaves parameters at random init."""
        try:
            saved = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(f"cannot read ECAPA checkpoint {self.checkpoint}: {exc}") from exc
        missing = sorted(set(self.classifier.mods.embedding_model.state_dict()) - set(saved))
        if missing:
            raise ModelError(
                f"ECAPA checkpoint {self.checkpoint} does not match hyperparams.yaml's embedding_model; "
                f"{len(missing)} tensors missing, e.g. {missing[:3]}"
            )

    def embed_windows(
        self,
        samples: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        progress: Callable[[float], None] | None = None,
        gain: float = 1.0,
    ) -> np.ndarray:
        """Embed windows in batches of near-equal length, zero-padded, with relative lengths ``wav_lens``.

        A batch spans at most one 10 ms feature hop of length difference: padding reaches into the
        convolutions' context at a window's end, so longer padding would make a window's vector depend
        on which other windows share its call.
        """
        samples = np.asarray(samples, dtype=np.float32)
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples (1-D), got shape {samples.shape}")
        if starts.shape != ends.shape or starts.ndim != 1:
            raise ValueError("starts and ends must be 1-D arrays of the same length")
        if len(starts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if (starts < 0).any() or (ends > len(samples)).any() or (ends <= starts).any():
            raise ValueError("every window must satisfy 0 <= start < end <= len(samples)")

        lengths = ends - starts
        out = np.empty((len(starts), self.dimension), dtype=np.float32)
        done = 0
        with torch.inference_mode():
            for idx in _batches(lengths, self.batch_size, _MAX_PAD):
                width = max(int(lengths[idx].max()), _MIN_SAMPLES)
                batch = np.zeros((len(idx), width), dtype=np.float32)
                for row, i in enumerate(idx):
                    batch[row, : lengths[i]] = samples[starts[i] : ends[i]]
                if gain != 1.0:
                    batch *= np.float32(gain)
                wav_lens = torch.from_numpy(lengths[idx] / width).float()
                vectors = self.classifier.encode_batch(torch.from_numpy(batch), wav_lens)
                out[idx] = vectors.reshape(len(idx), -1).float().cpu().numpy()
                done += len(idx)
                if progress:
                    progress(done / len(starts))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def _batches(lengths: np.ndarray, batch_size: int, max_pad: int) -> list[np.ndarray]:
    """Window indices in batches of at most ``batch_size`` whose lengths differ by at most ``max_pad``."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    first = 0
    for k in range(1, len(order) + 1):
        if k == len(order) or k - first == batch_size or lengths[order[first]] - lengths[order[k]] > max_pad:
            batches.append(order[first:k])
            first = k
    return batches
