"""The diarization pipeline: composes the stages, nothing more."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .audio import Audio, load_audio
from .clustering import cluster_embeddings
from .config import ClusteringConfig, PipelineConfig, PostprocessConfig
from .embeddings import level_gain, load_backend
from .postprocess import assign_utterances
from .result import Result, Speaker, Utterance
from .segmentation import Windows, sliding_windows
from .speaker_count import SpeakerBounds, speaker_bounds
from .vad import SileroVAD, frame_energies_db, interior_pauses, speech_level_db

ProgressCallback = Callable[[str, float], None]


@dataclass(frozen=True)
class SpeechEmbeddings:
    """The expensive half of the pipeline's work: where speech is, and one embedding per window
    (``energies_db``: the signal's 10 ms frame energies, where pauses inside speech are found)."""

    regions: np.ndarray
    windows: Windows
    embeddings: np.ndarray
    duration: float
    energies_db: np.ndarray = field(default_factory=lambda: np.zeros(0))


def label_speakers(
    features: SpeechEmbeddings,
    bounds: SpeakerBounds,
    clustering: ClusteringConfig = ClusteringConfig(),
    postprocess: PostprocessConfig = PostprocessConfig(),
) -> tuple[list[Utterance], list[Speaker]]:
    """The cheap half: cluster the window embeddings and turn window labels into utterances."""
    result = cluster_embeddings(features.embeddings, bounds, clustering)
    similarity = features.embeddings @ result.centroids.T
    pauses = None
    if postprocess.min_pause is not None:
        pauses = interior_pauses(features.regions, features.energies_db, postprocess.min_pause,
                                 postprocess.pause_floor_window, postprocess.pause_level, postprocess.pause_depth_db)
    utterances, clusters = assign_utterances(
        features.regions, features.windows, result.labels, similarity, features.duration, postprocess, pauses
    )
    speakers = [
        Speaker(
            label=name,
            talk_time=sum(u.duration for u in utterances if u.speaker == name),
            utterance_count=sum(1 for u in utterances if u.speaker == name),
            centroid=result.centroids[index],
        )
        for name, index in clusters.items()
    ]
    return utterances, speakers


class DiarizationPipeline:
    """Audio in, labeled utterances out. Models load once, in the constructor.

    >>> pipeline = DiarizationPipeline()
    >>> result = pipeline("meeting.wav", max_speakers=4)
    """

    def __init__(self, config: PipelineConfig = PipelineConfig()):
        self.config = config
        self.vad = SileroVAD(config.vad)
        self.embedding_backend = load_backend(config.embedding)
        # silero_vad sets torch to 1 thread on import: choose the count deliberately, after all imports;
        # numpy's BLAS and scikit-learn's OpenMP get the same count (one pool per core in each of several
        # worker processes oversubscribes the CPU: batch throughput 175 -> 283 audio-h/h with 2 workers).
        threads = config.embedding.num_threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        threadpool_limits(threads)

    def embed_speech(self, audio: Audio, progress: ProgressCallback | None = None) -> SpeechEmbeddings:
        """VAD, windows and window embeddings of the mono downmix."""
        report = progress or (lambda stage, fraction: None)
        samples = audio.mono()
        report("vad", 0.05)
        energies_db = frame_energies_db(samples)
        regions = self.vad(samples, energies_db)
        windows = sliding_windows(regions, audio.duration, self.config.segmentation)
        report("embed", 0.1)
        starts, ends = windows.sample_bounds(audio.sample_rate)
        gain = level_gain(speech_level_db(regions, energies_db), self.config.embedding.speech_level_db)
        embeddings = self.embedding_backend.embed_windows(
            samples, starts, ends, progress=lambda f: report("embed", 0.1 + 0.8 * f), gain=gain
        )
        return SpeechEmbeddings(regions, windows, embeddings, audio.duration, energies_db)

    def __call__(
        self,
        audio: Audio | str | os.PathLike | bytes,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Result:
        """Diarize ``audio`` (a path, encoded bytes or a loaded :class:`Audio`); speaker-count hints are optional."""
        report = progress or (lambda stage, fraction: None)
        report("decode", 0.0)
        if not isinstance(audio, Audio):
            audio = load_audio(audio, self.config.audio)
        bounds = speaker_bounds(audio.duration, num_speakers, min_speakers, max_speakers)
        features = self.embed_speech(audio, report)
        report("cluster", 0.9)
        utterances, speakers = label_speakers(features, bounds, self.config.clustering, self.config.postprocess)
        report("done", 1.0)
        return Result(
            utterances=utterances,
            speakers=speakers,
            duration=audio.duration,
            model=self.embedding_backend.model_id,
            config=self.config.model_dump(mode="json"),
            uri=Path(audio.path).stem if audio.path else "audio",
        )
