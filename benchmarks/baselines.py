"""Baseline (a): the recipe practitioners copy today, Resemblyzer partial embeddings + Google's spectralcluster.

1. Decode to 16 kHz mono (soundfile + soxr); our pipeline's own VAD, ``diarize.vad.SileroVAD``, same ``VADConfig``.
2. Concatenate the speech regions, keeping each region's offset (this replaces ``preprocess_wav``'s silence
   trimming, which loses the timestamps), and apply ``preprocess_wav``'s volume normalisation (-30 dBFS, up only).
3. ``VoiceEncoder().embed_utterance(speech, return_partials=True, rate=16)``: 1.6 s partials every 62.5 ms.
4. ``SpectralClusterer`` with the spectralcluster README's ICASSP 2018 settings (``icassp2018_refinement_options``:
   CropDiagonal, GaussianBlur sigma 1, RowWiseThreshold p 0.95 soft 0.01, Symmetrize, Diffuse, RowWiseNormalize;
   cosine k-means), ``min_clusters=2, max_clusters=7``: the README's ``icassp2018_clusterer`` verbatim.
5. Each 10 ms frame of the concatenated speech takes the majority label of the partials covering it (frames
   no partial covers take the nearest partial's label); runs of a label are mapped back to original time.

With ``min_clusters=1`` spectralcluster's single-cluster test (GMM-BIC on affinities next to the diagonal) calls
every file of the benchmark one speaker, since neighbouring 62.5 ms-hop partials are near-duplicates; the README's
``min_clusters=2`` is kept. Fewer than 3 partials (under ~1.7 s of speech) are labelled one speaker.
Baseline (b), k-means given the true speaker count, is our own pipeline run with
``ClusteringConfig(method="kmeans", oversplit=1.0)`` (k clusters, no over-split and merge) and
``num_speakers=<true count>`` (see ``runner.py``).
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr
from pyannote.core import Annotation, Segment

from diarize.config import VADConfig
from diarize.vad import SileroVAD

BASELINE_VERSION = 1  # bump when the baseline changes: its cached hypotheses are then recomputed
SR = 16000
FRAME = 160  # 10 ms label frames
RATE = 16
MIN_CLUSTERS = 2
MAX_CLUSTERS = 7


def load_mono(path: str) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    return soxr.resample(audio, sr, SR).astype(np.float32) if sr != SR else audio


class ResemblyzerSpectral:
    """Resemblyzer partials + spectralcluster (ICASSP 2018 config); call with a file path, get an Annotation."""

    name = "resemblyzer+spectralcluster"

    def __init__(self, vad: VADConfig) -> None:
        from resemblyzer import VoiceEncoder
        from spectralcluster import SpectralClusterer, configs

        self.vad = SileroVAD(vad)
        self.encoder = VoiceEncoder("cpu", verbose=False)
        self.clusterer = SpectralClusterer(
            min_clusters=MIN_CLUSTERS, max_clusters=MAX_CLUSTERS, autotune=None, laplacian_type=None,
            refinement_options=configs.icassp2018_refinement_options, custom_dist="cosine",
        )

    def __call__(self, path: str, uri: str) -> Annotation:
        from resemblyzer.audio import normalize_volume

        samples = load_mono(path)
        regions = [(int(round(a * SR)), int(round(b * SR))) for a, b in self.vad(samples) if b > a]
        ann = Annotation(uri=uri)
        if not regions:
            return ann
        speech = np.concatenate([samples[a:b] for a, b in regions])
        speech = normalize_volume(speech, -30, increase_only=True)
        _, partials, slices = self.encoder.embed_utterance(speech, return_partials=True, rate=RATE)
        labels = self.clusterer.predict(partials) if len(partials) >= 3 else np.zeros(len(partials), dtype=int)
        frames = frame_labels(len(speech), [(s.start, s.stop) for s in slices], labels)
        offset = 0
        for a, b in regions:
            for lo, hi, label in _runs(frames, offset, offset + b - a):
                ann[Segment((a + lo - offset) / SR, (a + hi - offset) / SR)] = f"S{label}"
            offset += b - a
        return ann


def frame_labels(n_samples: int, windows: list[tuple[int, int]], labels: np.ndarray) -> np.ndarray:
    """Majority label per 10 ms frame over the windows covering it; uncovered frames take the nearest window's."""
    n_frames = -(-n_samples // FRAME)
    votes = np.zeros((n_frames, int(labels.max()) + 1), dtype=np.int32)
    for (start, stop), label in zip(windows, labels):
        lo, hi = start // FRAME, min(stop, n_samples) // FRAME
        votes[lo:hi, label] += 1
    out = votes.argmax(axis=1)
    empty = votes.sum(axis=1) == 0
    if empty.any():
        centres = np.array([(s + e) / 2 / FRAME for s, e in windows])
        nearest = np.abs(np.flatnonzero(empty)[:, None] + 0.5 - centres[None, :]).argmin(axis=1)
        out[empty] = labels[nearest]
    return out


def _runs(frames: np.ndarray, start: int, end: int) -> list[tuple[int, int, int]]:
    """``(lo, hi, label)`` sample runs of constant frame label inside ``[start, end)``."""
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        label = int(frames[min(pos // FRAME, len(frames) - 1)])
        nxt = min(end, (pos // FRAME + 1) * FRAME)
        while nxt < end and int(frames[nxt // FRAME]) == label:
            nxt = min(end, nxt + FRAME)
        out.append((pos, nxt, label))
        pos = nxt
    return out
