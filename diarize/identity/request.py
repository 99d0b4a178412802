"""The identification request, in the shape users know from hosted APIs, and the identities it asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..errors import IdentificationError, TranscriptError
from .lexicon import TITLE_KINDS, TITLES, role_kind, words_of
from .transcript import Word, parse_transcript


class SpeakerProfile(BaseModel):
    """One expected speaker: a name, a role or both, an optional description, and any metadata of the user's."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, frozen=True)

    name: str | None = None
    role: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _named_or_roled(self) -> "SpeakerProfile":
        if not self.name and not self.role:
            raise ValueError("a speaker needs a 'name' or a 'role'")
        return self

    @property
    def metadata(self) -> dict[str, Any]:
        """The description and every extra field, returned with the identity."""
        extra = dict(self.model_extra or {})
        if self.description:
            extra["description"] = self.description
        return extra


class IdentificationRequest(BaseModel):
    """Who may be speaking, and what the user knows: ``speaker_type`` + ``known_values`` or ``speakers``,
    ``channel_roles`` ({"1": "Agent"}), a ``transcript`` (word list or Whisper JSON), and assignment options.

    Each identity goes to at most one speaker unless ``allow_repeats`` (channel roles always cover their
    whole channel). Weak priors (``use_priors``) only decide what no evidence does, and say so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    speaker_type: Literal["role", "name"] | None = None
    known_values: tuple[str, ...] = ()
    speakers: tuple[SpeakerProfile, ...] = ()
    channel_roles: dict[int, str] = {}
    transcript: Any = None
    allow_repeats: bool = False
    use_priors: bool = False
    call_direction: Literal["inbound", "outbound"] = "inbound"

    @field_validator("known_values", mode="after")
    @classmethod
    def _clean_values(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip() for v in values)
        if any(not v for v in cleaned):
            raise ValueError("known values must be non-empty")
        lowered = [v.lower() for v in cleaned]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"known values repeat: {', '.join(cleaned)}")
        return cleaned

    @field_validator("channel_roles", mode="after")
    @classmethod
    def _clean_channels(cls, roles: dict[int, str]) -> dict[int, str]:
        for channel, role in roles.items():
            if channel < 1:
                raise ValueError(f"channels are numbered from 1, got {channel}")
            if not role.strip():
                raise ValueError(f"channel {channel} has an empty role")
        return {c: r.strip() for c, r in sorted(roles.items())}

    @field_validator("transcript", mode="before")
    @classmethod
    def _parse_transcript(cls, value: Any) -> tuple[Word, ...] | None:
        if value is None:
            return None
        if isinstance(value, (list, tuple)) and all(isinstance(w, Word) for w in value):
            return tuple(value)
        try:
            return tuple(parse_transcript(value))
        except TranscriptError as exc:
            raise ValueError(f"transcript: {exc}") from exc

    @model_validator(mode="after")
    def _type_with_values(self) -> "IdentificationRequest":
        if self.known_values and self.speaker_type is None:
            raise ValueError("known_values need speaker_type ('role' or 'name')")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "IdentificationRequest":
        """Validate a JSON-like request; anything wrong is one :class:`IdentificationError` naming the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "request"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise IdentificationError(f"identification request: {where}: {message}") from None

    @property
    def words(self) -> tuple[Word, ...]:
        return self.transcript or ()


def parse_values(text: str) -> tuple[str, ...]:
    """``"Agent, Customer"`` -> ``("Agent", "Customer")``."""
    values = tuple(v.strip() for v in text.split(","))
    if not all(values):
        raise IdentificationError(f"expected comma-separated values, got {text!r}")
    return values


def parse_channel_roles(text: str) -> dict[int, str]:
    """``"1=Agent,2=Customer"`` -> ``{1: "Agent", 2: "Customer"}`` (channels numbered from 1)."""
    roles: dict[int, str] = {}
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[=:]\s*(.*\S)\s*", item)
        if not match or int(match[1]) < 1:
            raise IdentificationError(f"channel roles must look like 1=Agent,2=Customer (from 1), got {item.strip()!r}")
        if int(match[1]) in roles:
            raise IdentificationError(f"channel {match[1]} is given two roles")
        roles[int(match[1])] = match[2]
    return roles


@dataclass
class Candidate:
    """An identity a speaker may be given: a name, a role or both, with what the text may call it."""

    name: str | None
    role: str | None
    kind: str | None = None
    channels: set[int] = field(default_factory=set)
    metadata: dict[str, Any] = field(default_factory=dict)
    requested: bool = True
    source: str = "request"

    @property
    def aliases(self) -> set[tuple[str, ...]]:
        """Word sequences that refer to this person: the full name, its first and last word, without titles."""
        return name_aliases(self.name) if self.name else set()

    def describe(self) -> str:
        if self.name and self.role:
            return f"{self.role}: {self.name}"
        return self.name or self.role or "?"

    def has_role(self, role: str) -> bool:
        """Whether a role (word, name or kind) from the evidence fits; a title counts: "Dr. Chen" is a doctor."""
        lowered = role.lower()
        if self.role is not None and lowered == self.role.lower():
            return True
        return self.kind is not None and (lowered == self.kind or role_kind(role) == self.kind)

    def answers_to(self, name: str) -> bool:
        """Whether ``name`` as heard ("Sarah", "Dr. Chen", "Sarah Johnson") can refer to this person."""
        core = tuple(w for w in words_of(name) if w not in TITLES)
        return bool(core) and core in self.aliases


def name_aliases(name: str) -> set[tuple[str, ...]]:
    """``"Dr. Sarah Chen"`` -> {("sarah", "chen"), ("sarah",), ("chen",)}: titles are matched separately."""
    words = tuple(w for w in words_of(name) if w not in TITLES)
    if not words:
        return set()
    return {words, words[:1], words[-1:]}


def title_kind(name: str | None) -> str | None:
    """The role a name's title says ("Dr. Chen" -> doctor)."""
    words = words_of(name or "")
    return TITLE_KINDS.get(words[0]) if words else None


def requested_candidates(request: IdentificationRequest) -> list[Candidate]:
    """The identities the request names, merged where they are the same (a channel role also listed as a value)."""
    out: list[Candidate] = []
    for value in request.known_values:
        if request.speaker_type == "role":
            out.append(Candidate(None, value, role_kind(value)))
        else:
            out.append(Candidate(value, None, title_kind(value)))
    for profile in request.speakers:
        if any(_same(c, profile.name, profile.role) for c in out):
            raise IdentificationError(f"speaker {profile.name or profile.role!r} is listed twice")
        kind = role_kind(profile.role, profile.description) or title_kind(profile.name)
        out.append(Candidate(profile.name, profile.role, kind, metadata=profile.metadata))
    for channel, role in request.channel_roles.items():
        match = next((c for c in out if c.role and c.role.lower() == role.lower()), None)
        if match is None:
            match = Candidate(None, role, role_kind(role))
            out.append(match)
        match.channels.add(channel)
    return out


def _same(candidate: Candidate, name: str | None, role: str | None) -> bool:
    if name and candidate.name:
        return candidate.name.lower() == name.lower()
    return not name and not candidate.name and bool(role) and candidate.has_role(role or "")
