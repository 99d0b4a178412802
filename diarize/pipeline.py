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
from .config import ClusteringConfig, PipelineConfig, PostprocessConfig, ReconstructionConfig
from .embeddings import level_gain, load_backend
from .errors import ConfigError
from .local_embeddings import LocalTurns, embed_local_turns
from .postprocess import assign_utterances, speaker_label
from .reconstruction import fitted_to_sound, reconstruct
from .result import Result, Speaker, Utterance
from .segmentation import Windows, sliding_windows
from .speaker_clustering import ClusteringDefaults, assign_turns, cluster_speakers
from .speaker_count import SpeakerBounds, speaker_bounds
from .speaker_segmentation import ChunkSegmentation, SpeakerSegmenter
from .vad import SileroVAD, frame_energies_db, interior_pauses, speech_level_db

ProgressCallback = Callable[[str, float], None]


@dataclass(frozen=True)
class SpeechEmbeddings:
    """The expensive half of the ``windows`` method: where speech is, and one embedding per window
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
    """The cheap half of the ``windows`` method: cluster the window embeddings, window labels to utterances."""
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


@dataclass(frozen=True)
class LocalSpeakers:
    """The expensive half of the ``neural`` method: the chunks' local speakers, their embedded turns,
    when configured Silero VAD's speech regions, and the signal's 10 ms frame energies (``energies_db``,
    to which the turns' edges and pauses are fitted)."""

    segmentation: ChunkSegmentation
    turns: LocalTurns
    speech: np.ndarray | None = None
    energies_db: np.ndarray | None = None


def label_local_speakers(
    local: LocalSpeakers,
    bounds: SpeakerBounds,
    clustering: ClusteringDefaults,
    reconstruction: ReconstructionConfig = ReconstructionConfig(),
) -> tuple[list[Utterance], list[Speaker]]:
    """The cheap half of the ``neural`` method: cluster the local turns, rebuild the (overlapping) timeline."""
    seg, turns = local.segmentation, local.turns
    shaping = turns.whole & turns.clean & turns.embedded
    centroids = cluster_speakers(turns.embeddings[shaping], turns.clean_seconds[shaping], bounds, clustering)
    turns = turns.subset(turns.leaf)
    assignment = assign_turns(turns, centroids)
    timeline = reconstruct(seg.activity, seg.chunk_starts, seg.frame_step, seg.frame_duration, seg.duration,
                           turns, assignment.labels, assignment.num_speakers)
    if local.speech is not None:
        timeline = timeline.filled(local.speech)
    turns_out = timeline.turns(reconstruction)
    if local.energies_db is not None:
        turns_out = fitted_to_sound(turns_out, local.energies_db, reconstruction)
    confidence = _speaker_confidence(assignment.margin, assignment.labels, assignment.num_speakers)
    names: dict[int, str] = {}
    utterances = []
    for k, start, end in turns_out:
        name = names.setdefault(k, speaker_label(len(names)))
        utterances.append(Utterance(name, round(start, 3), round(min(end, seg.duration), 3), confidence[k]))
    speakers = [
        Speaker(label=name, talk_time=round(sum(u.duration for u in utterances if u.speaker == name), 3),
                utterance_count=sum(1 for u in utterances if u.speaker == name), centroid=centroids[k])
        for k, name in names.items()
    ]
    return utterances, speakers


def _speaker_confidence(margin: np.ndarray, labels: np.ndarray, k: int, scale: float = 0.2) -> list[float]:
    """How clearly each speaker's local speakers belong to it: mean cosine margin over the next centroid, in [0, 1]."""
    out = []
    for j in range(k):
        mine = margin[labels == j]
        out.append(round(float(np.clip(mine / scale, 0.0, 1.0).mean()) if mine.size else 0.0, 3))
    return out


class DiarizationPipeline:
    """Audio in, labeled utterances out. Models load once, in the constructor.

    >>> pipeline = DiarizationPipeline()
    >>> result = pipeline("meeting.wav", max_speakers=4)
    """

    def __init__(self, config: PipelineConfig = PipelineConfig()):
        self.config = config
        self.embedding_backend = load_backend(config.embedding)
        self.vad: SileroVAD | None = None
        self.segmenter: SpeakerSegmenter | None = None
        if config.method == "neural":
            if not hasattr(self.embedding_backend, "embed_features"):
                raise ConfigError(f"method 'neural' needs a backend that embeds filterbank frames (campplus), "
                                  f"not {config.embedding.backend!r}; use method 'windows' (the 'fast' preset)")
            seg = config.neural_segmentation
            self.segmenter = SpeakerSegmenter(step=seg.step, batch_size=seg.batch_size, precision=seg.precision,
                                              keep_log_probs=False)
        if config.method == "windows" or config.neural_segmentation.speech == "segmentation+silero":
            self.vad = SileroVAD(config.vad)
        # silero_vad sets torch to 1 thread on import: choose the count deliberately, after all imports;
        # numpy's BLAS and scikit-learn's OpenMP get the same count (one pool per core in each of several
        # worker processes oversubscribes the CPU: batch throughput 175 -> 283 audio-h/h with 2 workers).
        threads = config.embedding.num_threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        threadpool_limits(threads)

    @property
    def clustering_defaults(self) -> ClusteringDefaults:
        """The neural method's clustering parameters for this embedding model."""
        from .speaker_clustering import resolve

        return resolve(self.config.speaker_clustering, self.embedding_backend.model_id)

    def segment_speakers(self, audio: Audio, progress: ProgressCallback | None = None) -> LocalSpeakers:
        """Neural segmentation of the mono downmix, then one embedding per local turn."""
        assert self.segmenter is not None
        report = progress or (lambda stage, fraction: None)
        samples = audio.mono()
        report("segment", 0.02)
        seg = self.segmenter(samples, progress=lambda f: report("segment", 0.02 + 0.38 * f))
        report("embed", 0.4)
        features = self.embedding_backend.features(samples)
        energies_db = frame_energies_db(samples)
        options, quiet = self.config.neural_segmentation, self.config.reconstruction  # one notion of a pause
        pauses = None
        if options.turn_pause is not None:
            pauses = interior_pauses(np.array([[0.0, seg.duration]]), energies_db, options.turn_pause,
                                     quiet.pause_floor_window, quiet.pause_level, quiet.pause_depth_db)
        turns = embed_local_turns(
            seg.activity, seg.chunk_starts, seg.frame_step, seg.frame_duration, features,
            self.embedding_backend.embed_features, self.embedding_backend.dimension, options.min_clean,
            pauses, options.turn_piece, progress=lambda f: report("embed", 0.45 + 0.5 * f))
        speech = self.vad(samples, energies_db) if self.vad is not None else None
        return LocalSpeakers(seg, turns, speech, energies_db)

    def embed_speech(self, audio: Audio, progress: ProgressCallback | None = None) -> SpeechEmbeddings:
        """``windows`` method: VAD, windows and window embeddings of the mono downmix."""
        assert self.vad is not None
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
        """Diarize ``audio`` (a path, encoded bytes or a loaded :class:`Audio`); speaker-count hints are optional.

        With the ``neural`` method utterances of different speakers may overlap in time; ``Result.exclusive()``
        gives one speaker per instant.
        """
        report = progress or (lambda stage, fraction: None)
        report("decode", 0.0)
        if not isinstance(audio, Audio):
            audio = load_audio(audio, self.config.audio)
        bounds = speaker_bounds(audio.duration, num_speakers, min_speakers, max_speakers)
        if self.config.method == "neural":
            local = self.segment_speakers(audio, report)
            report("cluster", 0.95)
            utterances, speakers = label_local_speakers(local, bounds, self.clustering_defaults,
                                                        self.config.reconstruction)
        else:
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
            warnings=result_warnings(len(speakers), audio.duration, num_speakers, min_speakers, max_speakers),
        )


def result_warnings(found: int, duration: float, num_speakers: int | None = None, min_speakers: int | None = None,
                    max_speakers: int | None = None) -> list[str]:
    """Why a result may surprise: no speech at all, or a speaker-count hint the audio could not meet."""
    notes = [f"no speech found in {duration:.2f} s of audio"] if found == 0 else []
    if num_speakers is not None and found != num_speakers:
        notes.append(f"num_speakers={num_speakers} could not be met: found {found} speaker(s) that can be told apart")
    elif min_speakers is not None and found < min_speakers:
        notes.append(f"min_speakers={min_speakers} could not be met: found {found} speaker(s) that can be told apart")
    elif max_speakers is not None and found > max_speakers:
        notes.append(f"max_speakers={max_speakers} was exceeded: found {found} speaker(s)")
    return notes
