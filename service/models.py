"""Typed request options and responses of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from diarize.identity import IdentificationRequest, SpeakerProfile, parse_transcript
from diarize.voiceprints.enrollment import check_metadata


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
    """Who may be speaking: ``speaker_type`` + ``known_values``, or ``speakers`` profiles (as the library's request)."""

    speaker_type: Literal["name", "role"] | None = Field(None, description="What known_values are.")
    known_values: list[str] | None = Field(None, max_length=100, examples=[["Agent", "Customer"]])
    speakers: list[SpeakerProfile] | None = Field(
        None, max_length=100, description="Expected speakers: name and/or role, description, any metadata.")
    allow_repeats: bool = Field(False, description="Let several speakers share one identity.")
    use_priors: bool = Field(False, description="Let weak priors (who speaks first) decide what no evidence does.")
    call_direction: Literal["inbound", "outbound"] = Field("inbound", description="For use_priors.")


class TranscriptWord(_Model):
    """One recognised word and its time span in seconds (``channel`` from 1 when the ASR ran per channel)."""

    word: str
    start: float
    end: float
    probability: float | None = Field(None, allow_inf_nan=False)
    channel: int | None = None


class DiarizeOptions(_Model):
    """Options shared by ``POST /v1/diarize`` and ``POST /v1/jobs`` (names follow hosted speech APIs)."""

    speakers_expected: int | None = Field(None, ge=1, le=100, description="Exact number of speakers.")
    speaker_options: SpeakerOptions | None = None
    multichannel: bool = Field(
        False, description="Diarize each channel on its own (speakers 1A, 2A, ...); speaker counts apply per channel."
    )
    channel_roles: dict[str, str] | None = Field(
        None, description='Role of each channel\'s party, e.g. {"1": "Agent", "2": "Customer"} (needs multichannel).')
    speaker_identification: SpeakerIdentification | None = Field(
        None, description="Who may be speaking; evidence also comes from channel_roles, transcript, voiceprints."
    )
    transcript: list[TranscriptWord] | None = Field(
        None, exclude=True, description="ASR words (a word list or Whisper JSON); not echoed back in jobs.")
    identify_enrolled: bool = Field(False, description="Match speakers against the tenant's enrolled voiceprints.")
    exclusive: bool = Field(False, description="One speaker per instant: overlapped speech goes to the speaker of the "
                                               "longer utterance (by default utterances of two speakers may overlap).")

    @field_validator("transcript", mode="before")
    @classmethod
    def _words(cls, value: Any) -> Any:
        if value is None or isinstance(value, list) and all(isinstance(w, TranscriptWord) for w in value):
            return value
        return [{"word": w.text, "start": w.start, "end": w.end, "probability": w.probability, "channel": w.channel}
                for w in parse_transcript(value)]

    @model_validator(mode="after")
    def _consistent(self) -> "DiarizeOptions":
        so = self.speaker_options
        n = self.speakers_expected
        if n is not None and so is not None:
            if so.min_speakers_expected not in (None, n) or so.max_speakers_expected not in (None, n):
                raise ValueError("speakers_expected conflicts with speaker_options")
        if self.channel_roles and not self.multichannel:
            raise ValueError("channel_roles needs multichannel")
        request = self.identification_request()
        if self.channel_roles:
            if len(request.channel_roles) != len(self.channel_roles):
                raise ValueError("channel_roles gives one channel two roles")
            self.channel_roles = {str(channel): role for channel, role in request.channel_roles.items()}
        return self

    def hints(self) -> dict[str, int | None]:
        so = self.speaker_options or SpeakerOptions()
        return {
            "num_speakers": self.speakers_expected,
            "min_speakers": so.min_speakers_expected,
            "max_speakers": so.max_speakers_expected,
        }

    def task_options(self) -> dict[str, Any]:
        """What a worker needs to diarize: the speaker-count hints and whether to split channels."""
        return {**self.hints(), "multichannel": self.multichannel}

    def identification_request(self) -> IdentificationRequest | None:
        """The library's identification request these options make, or None when they ask for none."""
        if self.speaker_identification is None and not self.channel_roles and self.transcript is None:
            return None
        fields = self.speaker_identification.model_dump(exclude_none=True) if self.speaker_identification else {}
        words = [w.model_dump() for w in self.transcript] if self.transcript is not None else None
        return IdentificationRequest.parse({**fields, "channel_roles": self.channel_roles or {}, "transcript": words})

    def stored(self) -> dict[str, Any]:
        """The options as a job keeps them (with the transcript, which the API does not echo)."""
        out = self.model_dump(mode="json")
        if self.transcript is not None:
            out["transcript"] = [w.model_dump(exclude_none=True) for w in self.transcript]
        return out


class ErrorInfo(BaseModel):
    code: str = Field(examples=["corrupt_audio"])
    message: str


class ErrorResponse(BaseModel):
    """The one shape of every error."""

    error: ErrorInfo


class Evidence(BaseModel):
    """One reason for (positive ``weight``, log-odds) or against (negative) an identity: what was said or seen, when."""

    source: str = Field(examples=["introduction"], description=(
        "voiceprint, channel, introduction, addressing, role_phrase, questions, opens_closes, mention, "
        "elimination or prior"))
    weight: float
    text: str = ""
    time: float | None = Field(None, description="Seconds from the start of the audio, for what was said.")
    said_by: str | None = Field(None, description="The speaker who said it (transcript cues).")


class Identity(BaseModel):
    """Who a diarized speaker is, how sure, and why (no name or role when unassigned: see ``reason``);
    ``speaker_id`` and ``score`` when it is an enrolled speaker whose voiceprint matched."""

    name: str | None = None
    role: str | None = None
    confidence: float
    evidence: list[Evidence] | None = None
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    speaker_id: str | None = None
    score: float | None = Field(None, description="Cosine score against the enrolled voiceprint.")

    @property
    def assigned(self) -> bool:
        return self.name is not None or self.role is not None


class IdentificationSummary(BaseModel):
    """What identification could not settle: requested identities no speaker got (each with its reason), and notes."""

    unassigned: list[Identity]
    notes: list[str]


class Utterance(BaseModel):
    speaker: str
    start: float = Field(description="Seconds from the start of the audio.")
    end: float
    confidence: float
    channel: int | None = Field(None, description="1-based channel (multichannel).")
    text: str | None = Field(None, description="The transcript's words said in it (when a transcript was given).")
    identity: Identity | None = Field(None, description="The speaker's identity (its evidence is on the speaker).")


class Speaker(BaseModel):
    speaker: str
    talk_time: float
    utterance_count: int
    channel: int | None = None
    identity: Identity | None = None
    voice_id: str | None = Field(None, description="Persistent id of this voice across the tenant's files.")


class DiarizeResponse(BaseModel):
    """Who spoke when in one recording: the library's ``Result.to_dict()`` document (one schema for the CLI, batch
    outputs and the API), plus ``voice_id`` per speaker for jobs and ``speaker_id``/``score`` for enrolled matches."""

    uri: str | None = Field(None, description="File id (from the uploaded file's name), as in RTTM.")
    utterances: list[Utterance]
    speakers: list[Speaker]
    num_speakers: int
    audio_duration: float
    model: str
    identification: IdentificationSummary | None = None
    warnings: list[str] = Field(default_factory=list, description=(
        "Why a result may surprise: no speech found, a speaker count the audio could not meet, a truncated file."))

    @classmethod
    def from_result(cls, data: dict[str, Any], warnings: Any = (), matches: Any = ()) -> "DiarizeResponse":
        """From ``Result.to_dict()``, with the worker's ``warnings`` added; voiceprint ``matches`` add
        ``speaker_id`` and ``score`` to the identities they decided."""
        response = cls.model_validate({**data, "warnings": list(dict.fromkeys([*data.get("warnings", ()),
                                                                                *warnings]))})
        enrolled = {m.label: m for m in matches if m.name}
        for speaker in response.speakers:
            match = enrolled.get(speaker.speaker)
            if speaker.identity is not None and match is not None and speaker.identity.name == match.name:
                speaker.identity.speaker_id, speaker.identity.score = match.speaker_id, round(match.score, 4)
                for u in response.utterances:
                    if u.speaker == speaker.speaker and u.identity is not None:
                        u.identity.speaker_id, u.identity.score = speaker.identity.speaker_id, speaker.identity.score
        return response


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
    metadata: dict[str, Any] | None = Field(
        None, description="JSON object merged into the metadata (the result: at most 8 levels deep, 16 KiB).")

    @field_validator("metadata")
    @classmethod
    def _plain_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_metadata(value)


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
