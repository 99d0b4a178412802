"""Typed request options and responses of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeakerOptions(_Model):
    """Bounds on the number of speakers, when the exact count is unknown."""

    min_speakers_expected: int | None = Field(None, ge=1, le=100)
    max_speakers_expected: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> "SpeakerOptions":
        low, high = self.min_speakers_expected, self.max_speakers_expected
        if low is not None and high is not None and low > high:
            raise ValueError("min_speakers_expected cannot exceed max_speakers_expected")
        return self


class SpeakerIdentification(_Model):
    """Name speakers from context: by ``name`` or by ``role``, optionally from a list of known values."""

    speaker_type: Literal["name", "role"] = "name"
    known_values: list[str] | None = Field(None, max_length=100)


class DiarizeOptions(_Model):
    """Options shared by ``POST /v1/diarize`` and ``POST /v1/jobs`` (names follow hosted speech APIs)."""

    speakers_expected: int | None = Field(None, ge=1, le=100, description="Exact number of speakers.")
    speaker_options: SpeakerOptions | None = None
    multichannel: bool = Field(
        False, description="Diarize each channel separately (not available yet: 422 not_available)."
    )
    speaker_identification: SpeakerIdentification | None = Field(
        None, description="Name speakers from what they say (not available yet: 422 not_available)."
    )
    identify_enrolled: bool = Field(False, description="Match speakers against the tenant's enrolled voiceprints.")

    @model_validator(mode="after")
    def _consistent(self) -> "DiarizeOptions":
        so = self.speaker_options
        n = self.speakers_expected
        if n is not None and so is not None:
            if so.min_speakers_expected not in (None, n) or so.max_speakers_expected not in (None, n):
                raise ValueError("speakers_expected conflicts with speaker_options")
        return self

    def hints(self) -> dict[str, int | None]:
        so = self.speaker_options or SpeakerOptions()
        return {
            "num_speakers": self.speakers_expected,
            "min_speakers": so.min_speakers_expected,
            "max_speakers": so.max_speakers_expected,
        }


class ErrorInfo(BaseModel):
    code: str = Field(examples=["corrupt_audio"])
    message: str


class ErrorResponse(BaseModel):
    """The one shape of every error."""

    error: ErrorInfo


class Identity(BaseModel):
    """An enrolled speaker matched to a diarized one."""

    speaker_id: str
    name: str
    role: str | None = None
    score: float = Field(description="Cosine score against the enrolled voiceprint.")
    confidence: float = Field(description="Calibrated probability that this is the enrolled speaker.")


class Utterance(BaseModel):
    speaker: str
    start: float = Field(description="Seconds from the start of the audio.")
    end: float
    confidence: float
    channel: int | None = None
    identity: Identity | None = None


class Speaker(BaseModel):
    speaker: str
    talk_time: float
    utterance_count: int
    identity: Identity | None = None
    voice_id: str | None = Field(None, description="Persistent id of this voice across the tenant's files.")


class DiarizeResponse(BaseModel):
    """Who spoke when in one recording."""

    utterances: list[Utterance]
    speakers: list[Speaker]
    num_speakers: int
    audio_duration: float
    model: str
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def from_result(cls, data: dict[str, Any], warnings: list[str] = ()) -> "DiarizeResponse":
        """From ``Result.to_dict()``."""
        return cls(
            utterances=[Utterance(**{k: u[k] for k in ("speaker", "start", "end", "confidence", "channel") if k in u})
                        for u in data["utterances"]],
            speakers=[Speaker(speaker=s["label"], talk_time=s["talk_time"], utterance_count=s["utterance_count"])
                      for s in data["speakers"]],
            num_speakers=data["num_speakers"],
            audio_duration=data["audio_duration"],
            model=data["model"],
            warnings=list(warnings),
        )


JobStatus = Literal["queued", "running", "succeeded", "failed"]


class BatchProgress(BaseModel):
    """A directory job's files: how many, how many done (diarized or failed), and the audio diarized so far."""

    pattern: str | None = Field(None, description="Glob on file names; default: any audio file name.")
    files: int
    done: int
    failed: int
    audio_seconds: float


class Job(BaseModel):
    """A diarization job: its state now, and where its result is once it succeeded."""

    id: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int
    source: Literal["upload", "archive"]
    filename: str | None = None
    keep_audio: bool
    audio_duration: float | None = None
    options: DiarizeOptions
    error: ErrorInfo | None = None
    result_url: str | None = None
    batch: BatchProgress | None = Field(None, description="Set for a directory (or manifest) job.")


class JobList(BaseModel):
    jobs: list[Job]


class BatchFile(BaseModel):
    """One file of a directory job: its outcome, and where its full result is."""

    file: str = Field(description="Path relative to the directory (or manifest) the job named.")
    status: Literal["ok", "failed"]
    duration: float | None = None
    speakers: int | None = None
    labels: list[str] = Field(default_factory=list)
    voice_ids: list[str | None] = Field(default_factory=list)
    names: list[str | None] = Field(default_factory=list, description="Enrolled names (identify_enrolled).")
    error: str | None = None
    result_url: str | None = None


class BatchRunSummary(BaseModel):
    files: int
    ok: int
    failed: int
    processed: int = Field(description="Files diarized by the run that finished the job.")
    skipped: int = Field(description="Files done before a restart, not diarized again.")
    audio_seconds: float
    wall_seconds: float = Field(description="Of the run that finished the job.")
    throughput_audio_hours_per_hour: float


class BatchResult(BaseModel):
    """A directory job's result: the batch summary and one record per file."""

    summary: BatchRunSummary
    audio_duration: float = Field(description="Seconds of audio diarized in all.")
    files: list[BatchFile]
    warnings: list[str] = Field(default_factory=list)


class BatchSpeaker(Speaker):
    name: str | None = Field(None, description="The enrolled speaker's name (identify_enrolled).")


class BatchFileResult(DiarizeResponse):
    """One file of a directory job: who spoke when, with voice ids and enrolled names."""

    file: str
    speakers: list[BatchSpeaker]

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "BatchFileResult":
        """From the batch output JSON of one file."""
        base = DiarizeResponse.from_result(doc, doc.get("warnings", ()))
        speakers = [BatchSpeaker(**{**speaker.model_dump(), "voice_id": s.get("voice_id"), "name": s.get("name")})
                    for speaker, s in zip(base.speakers, doc["speakers"])]
        return cls(**{**base.model_dump(), "speakers": speakers, "file": doc["file"]})


class EnrolledSpeaker(BaseModel):
    """An enrolled voice of this tenant."""

    id: str
    name: str
    role: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    n_samples: int
    speech_seconds: float
    created_at: str
    updated_at: str
    warnings: list[str] | None = Field(None, description="What the quality gates noticed (enrollment answers only).")

    @classmethod
    def of(cls, speaker: Any, warnings: list[str] | None = None) -> "EnrolledSpeaker":
        return cls(id=speaker.speaker_id, name=speaker.name, role=speaker.role, metadata=speaker.metadata,
                   n_samples=speaker.n_samples, speech_seconds=round(speaker.speech_seconds, 2),
                   created_at=speaker.created_at, updated_at=speaker.updated_at, warnings=warnings)


class SpeakerList(BaseModel):
    speakers: list[EnrolledSpeaker]


class SpeakerPatch(_Model):
    """Fields to change; metadata is merged into the existing metadata."""

    name: str | None = Field(None, min_length=1, max_length=200)
    role: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] | None = None


class Candidate(BaseModel):
    speaker_id: str
    name: str
    role: str | None = None
    score: float
    confidence: float
    matched: bool = Field(description="Score at or above the identification threshold.")


class IdentifiedSpeaker(BaseModel):
    speaker: str
    talk_time: float
    identity: Identity | None = Field(None, description="The one enrolled speaker assigned (one-to-one, open set).")
    candidates: list[Candidate]


class IdentifyResponse(BaseModel):
    """Who is speaking in a sample: per diarized speaker, the closest enrolled speakers."""

    audio_duration: float
    speakers: list[IdentifiedSpeaker]


class Appearance(BaseModel):
    file_id: str = Field(description="The job id the voice was heard in.")
    speaker: str = Field(description="Its diarized label in that file.")
    talk_time: float
    observed_at: str


class VoiceAppearances(BaseModel):
    voice_id: str
    appearances: list[Appearance]


class Voice(BaseModel):
    voice_id: str
    n_observations: int
    talk_time: float
    first_seen: str
    last_seen: str


class VoiceList(BaseModel):
    voices: list[Voice]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "starting", "unavailable"]
    workers_ready: int
    workers: int
    model: str | None = None
    voiceprints: bool = False
    detail: str | None = None
