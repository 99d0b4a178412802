"""The pipeline's output: labeled utterances and speakers, with JSON/RTTM I/O and pyannote conversion."""

from __future__ import annotations

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

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Speaker:
    """A diarized speaker: its label, how much it spoke, and its centroid embedding for identification."""

    label: str
    talk_time: float
    utterance_count: int
    centroid: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, with_centroid: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "talk_time": round(self.talk_time, 3),
            "utterance_count": self.utterance_count,
        }
        if with_centroid and self.centroid is not None:
            out["centroid"] = [round(float(v), 6) for v in self.centroid]
        return out


@dataclass
class Result:
    """Who spoke when in one recording."""

    utterances: list[Utterance]
    speakers: list[Speaker]
    duration: float
    model: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    uri: str = "audio"

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    def speaker(self, label: str) -> Speaker:
        for spk in self.speakers:
            if spk.label == label:
                return spk
        raise KeyError(label)

    def to_dict(self, with_centroids: bool = True) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "audio_duration": round(self.duration, 3),
            "num_speakers": self.num_speakers,
            "model": self.model,
            "utterances": [
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(u).items() if v is not None}
                for u in self.utterances
            ],
            "speakers": [s.to_dict(with_centroids) for s in self.speakers],
            "config": self.config,
        }

    def to_json(self, with_centroids: bool = True, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(with_centroids), indent=indent)

    def to_rttm(self) -> str:
        return annotation_to_rttm(self.to_annotation())

    def to_annotation(self) -> Annotation:
        return annotation_from_utterances(self.utterances, self.uri)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        utterances = [Utterance(**u) for u in data["utterances"]]
        speakers = [
            Speaker(
                label=s["label"],
                talk_time=s["talk_time"],
                utterance_count=s["utterance_count"],
                centroid=np.asarray(s["centroid"], dtype=np.float32) if s.get("centroid") else None,
            )
            for s in data["speakers"]
        ]
        return cls(utterances, speakers, data["audio_duration"], data.get("model", ""), data.get("config", {}),
                   data.get("uri", "audio"))


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
