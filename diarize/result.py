"""The pipeline's output: labeled utterances and speakers, with JSON/RTTM I/O and pyannote conversion."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pyannote.core import Annotation, Segment

from .errors import DiarizeError

UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech by one speaker (times in seconds from the start of the audio)."""

    speaker: str
    start: float
    end: float
    confidence: float = 1.0
    channel: int | None = None
    text: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Evidence:
    """One reason for (positive ``weight``) or against (negative) an identity, with what was said and when."""

    source: str
    weight: float
    text: str = ""
    time: float | None = None
    said_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "weight": round(self.weight, 3), "text": self.text}
        if self.time is not None:
            out["time"] = round(self.time, 3)
        if self.said_by is not None:
            out["said_by"] = self.said_by
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evidence":
        return cls(data["source"], data["weight"], data.get("text", ""), data.get("time"), data.get("said_by"))


@dataclass(frozen=True)
class Identity:
    """Who a diarized speaker is (``name``/``role``), how sure, and why; both None when left unassigned (``reason``)."""

    name: str | None
    role: str | None
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def assigned(self) -> bool:
        return self.name is not None or self.role is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "confidence": round(self.confidence, 3),
            "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Identity":
        return cls(data.get("name"), data.get("role"), data.get("confidence", 0.0),
                   tuple(Evidence.from_dict(e) for e in data.get("evidence") or ()), data.get("reason"),
                   data.get("metadata") or {})


@dataclass
class Speaker:
    """A diarized speaker: its label, how much it spoke, its centroid embedding, and its identity once identified."""

    label: str
    talk_time: float
    utterance_count: int
    centroid: np.ndarray | None = field(default=None, repr=False)
    channel: int | None = None
    identity: Identity | None = None

    def to_dict(self, with_centroid: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "speaker": self.label,
            "talk_time": round(self.talk_time, 3),
            "utterance_count": self.utterance_count,
        }
        if self.channel is not None:
            out["channel"] = self.channel
        if self.identity is not None:
            out["identity"] = self.identity.to_dict()
        if with_centroid and self.centroid is not None:
            out["centroid"] = [round(float(v), 6) for v in self.centroid]
        return out


@dataclass
class IdentificationSummary:
    """What identification could not settle: requested identities no speaker got (each with its reason), and notes."""

    unassigned: list[Identity] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"unassigned": [i.to_dict() for i in self.unassigned], "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IdentificationSummary":
        return cls([Identity.from_dict(i) for i in data.get("unassigned", [])], list(data.get("notes", [])))


@dataclass
class Result:
    """Who spoke when in one recording."""

    utterances: list[Utterance]
    speakers: list[Speaker]
    duration: float
    model: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    uri: str = "audio"
    identification: IdentificationSummary | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    def speaker(self, label: str) -> Speaker:
        for spk in self.speakers:
            if spk.label == label:
                return spk
        raise KeyError(label)

    def exclusive(self, min_duration: float = 0.05) -> "Result":
        """The same result with one speaker per instant (per channel): for transcripts and word assignment.

        Where utterances overlap, the speaker of the longer utterance keeps the time (a backchannel inside a
        turn goes; at a change of speaker the longer turn keeps the overlap); what remains of the other is
        kept when at least ``min_duration`` long. Speakers' talk time and utterance count follow.
        """
        pieces = exclusive_utterances(self.utterances, min_duration)
        speakers = [dataclasses.replace(
            s, talk_time=sum(u.duration for u in pieces if u.speaker == s.label and u.channel == s.channel),
            utterance_count=sum(1 for u in pieces if u.speaker == s.label and u.channel == s.channel))
            for s in self.speakers]
        return dataclasses.replace(self, utterances=pieces, speakers=speakers)

    @property
    def overlapped_seconds(self) -> float:
        """Seconds where two or more utterances of one channel overlap."""
        exclusive = sum(u.duration for u in exclusive_utterances(self.utterances, 0.0))
        return max(sum(u.duration for u in self.utterances) - exclusive, 0.0)

    def with_warnings(self, notes: Iterable[str]) -> "Result":
        """The same result with ``notes`` added to its warnings (each once, in order)."""
        return dataclasses.replace(self, warnings=list(dict.fromkeys([*self.warnings, *notes])))

    def to_dict(self, with_centroids: bool = False, include_config: bool = False) -> dict[str, Any]:
        """The one JSON document of a result, as the CLI, batch outputs and the HTTP API give it.

        Utterances carry their speaker's identity (without its evidence, which is on the speaker); centroids
        and the pipeline's configuration are left out unless asked for.
        """
        said = {s.label: {k: v for k, v in s.identity.to_dict().items() if k != "evidence"}
                for s in self.speakers if s.identity is not None and s.identity.assigned}
        utterances = []
        for u in self.utterances:
            item = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(u).items() if v is not None}
            if u.speaker in said:
                item["identity"] = said[u.speaker]
            utterances.append(item)
        out: dict[str, Any] = {
            "uri": self.uri,
            "audio_duration": round(self.duration, 3),
            "num_speakers": self.num_speakers,
            "model": self.model,
            "utterances": utterances,
            "speakers": [s.to_dict(with_centroids) for s in self.speakers],
        }
        if self.identification is not None:
            out["identification"] = self.identification.to_dict()
        out["warnings"] = list(self.warnings)
        if include_config:
            out["config"] = self.config
        return out

    def to_json(self, with_centroids: bool = False, indent: int | None = 2, include_config: bool = False) -> str:
        return json.dumps(self.to_dict(with_centroids, include_config), indent=indent)

    def to_rttm(self) -> str:
        return annotation_to_rttm(self.to_annotation())

    def to_annotation(self) -> Annotation:
        return annotation_from_utterances(self.utterances, self.uri)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        fields = {f.name for f in dataclasses.fields(Utterance)}
        utterances = [Utterance(**{k: v for k, v in u.items() if k in fields}) for u in data["utterances"]]
        speakers = [
            Speaker(
                label=s["speaker"] if "speaker" in s else s["label"],  # "label" before output version 2
                talk_time=s["talk_time"],
                utterance_count=s["utterance_count"],
                centroid=np.asarray(s["centroid"], dtype=np.float32) if s.get("centroid") else None,
                channel=s.get("channel"),
                identity=Identity.from_dict(s["identity"]) if s.get("identity") else None,
            )
            for s in data["speakers"]
        ]
        summary = data.get("identification")
        return cls(utterances, speakers, data["audio_duration"], data.get("model", ""), data.get("config", {}),
                   data.get("uri", "audio"), IdentificationSummary.from_dict(summary) if summary else None,
                   list(data.get("warnings", ())))


def exclusive_utterances(utterances: list[Utterance], min_duration: float = 0.05) -> list[Utterance]:
    """``utterances`` with overlaps (within a channel) given to the longer utterance; see :meth:`Result.exclusive`."""
    out: list[Utterance] = []
    for channel in sorted({u.channel for u in utterances}, key=lambda c: -1 if c is None else c):
        mine = [u for u in utterances if u.channel == channel]
        priority = {i: (-u.duration, u.start, u.speaker) for i, u in enumerate(mine)}
        events = sorted([(u.start, 1, i) for i, u in enumerate(mine)] + [(u.end, 0, i) for i, u in enumerate(mine)])
        active: set[int] = set()
        runs: list[list] = []
        previous = None
        for t, starts, i in events:
            if previous is not None and t > previous and active:
                holder = min(active, key=priority.__getitem__)
                if runs and runs[-1][0] == holder and abs(runs[-1][2] - previous) < 1e-9:
                    runs[-1][2] = t
                else:
                    runs.append([holder, previous, t])
            (active.add if starts else active.discard)(i)
            previous = t
        out += [dataclasses.replace(mine[i], start=a, end=b) for i, a, b in runs if b - a >= min_duration]
    return sorted(out, key=lambda u: (u.start, u.channel or 0))


def annotation_from_utterances(utterances: Iterable[Utterance], uri: str = "audio") -> Annotation:
    ann = Annotation(uri=uri)
    for i, u in enumerate(utterances):
        ann[Segment(u.start, u.end), i] = u.speaker
    return ann


def utterances_from_annotation(annotation: Annotation) -> list[Utterance]:
    return [
        Utterance(speaker=str(label), start=float(seg.start), end=float(seg.end))
        for seg, _, label in annotation.itertracks(yield_label=True)
    ]


def annotation_to_rttm(annotation: Annotation) -> str:
    uri = (annotation.uri or "audio").replace(" ", "_")
    lines = [
        f"SPEAKER {uri} 1 {seg.start:.3f} {seg.duration:.3f} <NA> <NA> {str(label).replace(' ', '_')} <NA> <NA>"
        for seg, _, label in annotation.itertracks(yield_label=True)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def read_rttm(path: str | Path) -> dict[str, Annotation]:
    """Parse an RTTM file into one :class:`Annotation` per file id."""
    annotations: dict[str, Annotation] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise DiarizeError(f"{path}:{lineno}: malformed RTTM line: {line!r}")
        uri, start, duration, label = fields[1], float(fields[3]), float(fields[4]), fields[7]
        ann = annotations.setdefault(uri, Annotation(uri=uri))
        ann[Segment(start, start + duration), len(ann)] = label
    return annotations
