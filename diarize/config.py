"""The one configuration object of the pipeline, with one section per stage.

Every field has a default tuned by ``benchmarks/``; a stage receives only its own section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioConfig(_Section):
    """Decoding: everything is resampled to ``sample_rate`` mono (or kept per channel)."""

    sample_rate: int = Field(16000, gt=0)
    block_seconds: float = Field(60.0, gt=0, description="Decode long files in blocks of this length.")
    max_duration: float | None = Field(None, gt=0, description="Refuse audio longer than this (seconds).")


class VADConfig(_Section):
    """Silero voice activity detection."""

    threshold: float = Field(0.4, gt=0, lt=1)
    neg_threshold: float | None = Field(None, gt=0, lt=1, description="Hysteresis end threshold; default threshold-0.15.")
    min_speech: float = Field(0.25, ge=0, description="Drop speech regions shorter than this (s).")
    min_silence: float = Field(0.3, ge=0, description="Bridge pauses shorter than this (s).")
    speech_pad: float = Field(0.03, ge=0, description="Pad each region on both sides (s).")
    normalize_loudness: bool = Field(True, description="Scale quiet recordings up before VAD.")
    target_rms_dbfs: float = -23.0
    refine_boundaries: bool = Field(True, description="Move region edges to where the signal's energy starts and ends.")
    refine_reach: float = Field(0.5, ge=0, description="Move an edge at most this far (s).")
    refine_level: float = Field(0.3, gt=0, lt=1, description="Energy threshold: this share from noise floor to speech level.")
    refine_gap: float = Field(0.2, ge=0, description="Energy dips this short do not stop an edge from growing (s).")


class SegmentationConfig(_Section):
    """Sliding windows over speech regions, each embedded once."""

    window: float = Field(1.5, gt=0.2)
    hop: float = Field(0.5, gt=0)
    min_window: float = Field(0.4, gt=0, description="Speech regions shorter than this get no window of their own.")


class NeuralSegmentationConfig(_Section):
    """pyannote segmentation-3.0 over sliding chunks: speech, up to 3 local speakers per chunk, overlap."""

    step: float = Field(5.0, gt=0, le=10.0, description="Chunk step (s); chunks are 10 s long.")
    speech: Literal["segmentation", "segmentation+silero"] = Field(
        "segmentation+silero", description="Where speech is: the segmentation model's frames, or those and Silero "
        "VAD's regions (the speaker of a frame only Silero hears is the best-scoring or nearest one).")
    batch_size: int = Field(32, gt=0)
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 where the CPU computes it natively.")
    min_clean: float = Field(
        0.5, ge=0, description="A local speaker gets its own embedding from at least this much speech where nobody "
        "else speaks (s); others are assigned by the chunk's constraints and the nearest centroid.")
    turn_pause: float | None = Field(
        0.2, gt=0, description="A local turn with a quiet stretch this long (s) in the signal is also labelled in pieces "
        "cut there (the model now and then runs one local speaker over two voices); None: never.")
    turn_piece: float = Field(1.0, gt=0, description="Such a cut leaves at least this much of the turn on each side (s).")


class EmbeddingConfig(_Section):
    """Which speaker-embedding backend and how to run it."""

    backend: Literal["campplus", "resemblyzer", "ecapa"] = "campplus"
    source: str | None = Field(None, description="Backend weights: hub id or local directory (ecapa) / .pt file.")
    device: str = "cpu"
    batch_size: int = Field(128, gt=0)
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="GE2E LSTM arithmetic; auto: bfloat16 where the CPU computes it natively (1.7x faster)."
    )
    num_threads: int | None = Field(None, gt=0, description="Torch, BLAS and OpenMP threads; default all cores.")
    speech_level_db: float | None = Field(
        -18.0, description="Embed speech as if its level (95th percentile of 20 ms frame energies inside the speech "
        "regions, dB re full scale) were this, so results do not depend on the recording's gain; None: as recorded.",
    )


class ClusteringConfig(_Section):
    """Speaker-count estimation and clustering of window embeddings."""

    method: Literal["spectral", "kmeans"] = "spectral"
    seed: int = 0
    max_windows: int = Field(1000, gt=10, description="Cluster at most this many windows; assign the rest.")
    oversplit: float = Field(1.5, ge=1.0, description="Cluster into this many times the eigengap (or given) count, then merge.")
    merge_threshold: float = Field(0.84, description="Merge clusters whose centroids' cosine is above this.")
    last_pair_threshold: float | None = Field(
        0.78, description="The last two clusters merge above this cosine (one voice or two); default merge_threshold."
    )
    small_merge_threshold: float | None = Field(
        0.82, description="Merge threshold when either cluster has under small_cluster_windows (noisier centroids)."
    )
    small_cluster_windows: int = Field(20, ge=1)
    min_cluster_windows: int = Field(3, ge=1, description="Fold clusters with fewer windows into their nearest.")
    bimodal_above: float | None = Field(
        1.3, description="Keep apart a pair whose windows, on the line through both centroids, fit two Gaussians "
        "better than one by this BIC per window (two look-alike voices); None merges on cosine alone.",
    )
    bimodal_below: float = Field(0.88, description="Only pairs under this cosine are tested for two modes.")
    blend_fit: float | None = Field(0.84, description="Fold small clusters this well fit by a mix of two others.")
    blend_max_windows: int = Field(10, ge=1, description="Largest cluster blend_fit may fold.")
    outlier_below: float | None = Field(0.65, description="Windows this unlike every cluster may form a new one.")
    outlier_min_windows: int = Field(2, ge=1, description="How many such windows a new cluster needs.")
    outlier_coherence: float = Field(0.6, description="Their mean pairwise cosine must reach this.")
    p_percentile_grid: tuple[float, ...] = Field((0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5))


class SpeakerClusteringConfig(_Section):
    """Global clustering of (chunk, local speaker) embeddings: agglomerative with a cosine threshold, small
    clusters folded into the nearest large one, then every local speaker reassigned to a centroid (two local
    speakers of one chunk never to the same one). ``None`` takes the embedding model's calibrated value
    (:data:`diarize.speaker_clustering.MODEL_DEFAULTS`)."""

    threshold: float | None = Field(
        None, gt=0, lt=2, description="Merge clusters whose members are closer than this mean cosine distance.")
    min_cluster_seconds: float | None = Field(
        None, ge=0, description="Clusters with less clean speech than this (s) are folded into the nearest other.")


class _Pauses(_Section):
    """What counts as a pause in the signal's energy, shared by both methods' last step."""

    min_pause: float | None = Field(
        0.5, gt=0, description="Cut quiet stretches this long (s) inside speech out of utterances; None keeps them."
    )
    pause_floor_window: float = Field(2.0, gt=0, description="Pauses are quiet against the noise floor over this long (s).")
    pause_level: float = Field(0.2, gt=0, lt=1, description="Quiet: under this share of the way from floor to speech level.")
    pause_depth_db: float = Field(15.0, ge=0, description="Quiet: at least this far below the speech level.")


class ReconstructionConfig(_Pauses):
    """From clustered local speakers back to a timeline that may give two speakers at once; each turn is then
    fitted to the sound (quiet edges trimmed, pauses of ``min_pause`` or more cut out)."""

    min_duration_off: float = Field(0.3, ge=0, description="Bridge a speaker's pauses shorter than this (s).")
    min_duration_on: float = Field(0.1, ge=0, description="Drop speech turns shorter than this (s).")


class PostprocessConfig(_Pauses):
    """From window labels to utterances."""

    frame_step: float = Field(0.05, gt=0)
    smoothing: float = Field(0.5, ge=0, description="Median-filter length over frame labels (s).")
    min_utterance: float = Field(0.2, ge=0)
    merge_gap: float = Field(0.5, ge=0, description="Join same-speaker pieces separated by less (s).")
    unknown_confidence: float = Field(0.0, ge=0, le=1, description="Utterances below this confidence become UNKNOWN.")


class MultichannelConfig(_Section):
    """Per-channel diarization (``multichannel=True``): crosstalk bleed and identical-channel detection."""

    frame: float = Field(0.02, gt=0, description="Level-comparison frame (s).")
    bleed_db: float = Field(12.0, gt=0, description="A channel this far below another at the same time is bleed.")
    bleed_spread: float = Field(0.04, ge=0, description="Compare with the other channel's peak this near (s).")
    identical_correlation: float = Field(0.999, gt=0, le=1, description="Channels this correlated are one signal.")


class IdentificationConfig(_Section):
    """Weights (log-odds units) of the evidence that names diarized speakers, and when it is enough."""

    min_score: float = Field(1.0, gt=0, description="A speaker needs this much net evidence for an identity.")
    margin: float = Field(0.75, ge=0, description="The chosen assignment must beat a rival one by this much.")
    voiceprint_cap: float = Field(4.0, gt=0, description="Bound on a voiceprint's log-odds either way.")
    channel: float = 3.0
    introduction: float = 3.0
    addressing: float = 2.0
    addressing_self: float = Field(-1.0, le=0, description="People do not address themselves by name.")
    role_phrase: float = 1.25
    role_phrase_cap: float = 3.0
    questions: float = 1.5
    opens_closes: float = 1.0
    mention: float = Field(-0.3, le=0, description="Saying a name or role word hints it is someone else.")
    prior: float = Field(0.5, gt=0, description="Weight of a weak prior (only with use_priors, only if undecided).")
    max_word_gap: float = Field(1.0, ge=0, description="Words this near an utterance join it, others are UNKNOWN.")


class PipelineConfig(_Section):
    """Complete configuration of :class:`diarize.pipeline.DiarizationPipeline`.

    ``method``: ``neural`` (default; segmentation-3.0 + CAM++, overlap-aware) or ``windows`` (the first
    generation: Silero VAD, fixed GE2E windows, spectral clustering; one speaker per instant). Named presets:
    :meth:`preset`.
    """

    method: Literal["neural", "windows"] = "neural"
    audio: AudioConfig = AudioConfig()
    neural_segmentation: NeuralSegmentationConfig = NeuralSegmentationConfig()
    speaker_clustering: SpeakerClusteringConfig = SpeakerClusteringConfig()
    reconstruction: ReconstructionConfig = ReconstructionConfig()
    vad: VADConfig = VADConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    multichannel: MultichannelConfig = MultichannelConfig()
    identification: IdentificationConfig = IdentificationConfig()

    @classmethod
    def preset(cls, name: str) -> "PipelineConfig":
        """``accurate`` (the default: neural segmentation, CAM++, overlap) or ``fast`` (GE2E windows, about 4x
        less CPU, one speaker per instant)."""
        if name == "accurate":
            return cls()
        if name == "fast":
            return cls(method="windows", embedding=EmbeddingConfig(backend="resemblyzer"))
        raise ValueError(f"unknown preset {name!r}; choose accurate or fast")
