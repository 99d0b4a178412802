"""Cross-file fingerprinting: link the diarized speakers of every processed file into persistent voices.

Each diarized speaker becomes an *observation* point (file id, local label, talk time, centroid). An
observation joins an existing *voice* when its score to the voice centroid reaches ``link`` and a low
percentile of its scores to the voice's member observations reaches ``link_member``; otherwise it
starts a new voice. Requiring agreement with the members, not just with the nearest observation,
keeps two different people from being chained into one voice through intermediate observations.
Within one file the assignment of speakers to voices is one-to-one and optimal; a speaker that
sounds like another speaker of the same file (a diarizer over-split) is stored but not linked.
"""

from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import VoiceNotFoundError, VoiceprintError
from ..result import Speaker
from .calibration import Calibration
from .identification import assign
from .store import Collection, NewPoint, StoredPoint

#: Speakers with less talk time are stored but not linked (their centroid is too unreliable).
MIN_LINK_TALK_TIME = 2.0
#: How many member observations of a candidate voice the anti-chaining guard compares against.
MEMBER_SAMPLE = 64
#: The guard uses this percentile of the member scores.
MEMBER_PERCENTILE = 10.0


@dataclass(frozen=True)
class VoiceLink:
    """Where one diarized speaker of a file went: its voice and the link score.

    ``voice_id`` is None for speakers too short to link, and for pieces the diarizer split off
    another speaker of the same file (``fragment_of`` names that speaker).
    """

    label: str
    voice_id: str | None
    new_voice: bool
    score: float | None
    talk_time: float
    fragment_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "voice_id": self.voice_id, "new_voice": self.new_voice,
                "score": None if self.score is None else round(self.score, 4), "talk_time": round(self.talk_time, 3),
                "fragment_of": self.fragment_of}


@dataclass(frozen=True)
class Appearance:
    """One observation: a voice's appearance in a file under a local label."""

    voice_id: str | None
    file_id: str
    label: str
    talk_time: float
    observed_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"voice_id": self.voice_id, "file_id": self.file_id, "label": self.label,
                "talk_time": round(self.talk_time, 3), "observed_at": self.observed_at}


@dataclass(frozen=True)
class Voice:
    """A persistent global voice and a summary of its appearances."""

    voice_id: str
    n_observations: int
    talk_time: float
    first_seen: str
    last_seen: str

    def to_dict(self) -> dict[str, Any]:
        return {"voice_id": self.voice_id, "n_observations": self.n_observations,
                "talk_time": round(self.talk_time, 3), "first_seen": self.first_seen, "last_seen": self.last_seen}

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> "Voice":
        return cls(p["voice_id"], int(p["n_observations"]), float(p["talk_time"]), p["first_seen"], p["last_seen"])


@dataclass(frozen=True)
class VoiceMatch:
    """A candidate voice for a query sample."""

    voice: Voice
    score: float
    confidence: float
    matched: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.voice.to_dict(), "score": round(self.score, 4), "confidence": round(self.confidence, 4),
                "matched": self.matched}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class VoiceLinker:
    """Observations and voices of every tenant in one collection (one embedding model)."""

    def __init__(self, collection: Collection, calibration: Calibration, *,
                 min_talk_time: float = MIN_LINK_TALK_TIME, member_sample: int = MEMBER_SAMPLE,
                 member_percentile: float = MEMBER_PERCENTILE) -> None:
        if calibration.model_id != collection.model_id:
            raise VoiceprintError(f"calibration of {calibration.model_id!r} used on {collection.model_id!r}")
        self.collection, self.calibration = collection, calibration
        self.min_talk_time, self.member_sample, self.member_percentile = min_talk_time, member_sample, member_percentile
        self._lock = threading.RLock()

    def observe(self, tenant: str, file_id: str, speakers: Sequence[Speaker]) -> list[VoiceLink]:
        """Store every speaker of ``file_id`` and link it to a voice; a file already observed is not re-linked."""
        if not isinstance(file_id, str) or not file_id:
            raise VoiceprintError("a file id is required")
        labels = [s.label for s in speakers]
        if len(set(labels)) != len(labels):
            raise VoiceprintError(f"{file_id}: speaker labels are not unique")
        with self._lock:
            existing = self.voices_in_file(tenant, file_id)
            if existing:
                return [VoiceLink(a.label, a.voice_id, False, None, a.talk_time) for a in existing]
            return self._observe(tenant, file_id, list(speakers))

    def _observe(self, tenant: str, file_id: str, speakers: list[Speaker]) -> list[VoiceLink]:
        now = _now()
        linkable = [i for i, s in enumerate(speakers) if s.centroid is not None and s.talk_time >= self.min_talk_time]
        vectors = {i: _unit(speakers[i].centroid) for i in linkable}
        voices: dict[str, StoredPoint] = {}
        for i in linkable:
            for hit in self.collection.search(tenant, vectors[i], "voice", limit=len(linkable) + 4, with_vectors=True):
                voices.setdefault(hit.payload["voice_id"], hit)
        voice_ids = list(voices)
        chosen: list[int | None] = [None] * len(linkable)
        scores = np.zeros((len(linkable), len(voice_ids)))
        if linkable and voice_ids:
            V = np.stack([vectors[i] for i in linkable])
            scores = V @ np.stack([_unit(voices[v].vector) for v in voice_ids]).T
            admissible = scores >= self.calibration.link
            for c, vid in enumerate(voice_ids):
                rows = np.flatnonzero(admissible[:, c])
                if rows.size:
                    members = self._member_vectors(tenant, vid)
                    if members.size:
                        guard = np.percentile(V[rows] @ members.T, self.member_percentile, axis=1)
                        admissible[rows[guard < self.calibration.link_member], c] = False
            chosen = assign(np.where(admissible, scores, -np.inf), self.calibration.link)
        links: dict[int, VoiceLink] = {}
        points: list[NewPoint] = []
        for row, i in enumerate(linkable):
            col = chosen[row]
            if col is None:
                continue
            spk, vid, hit = speakers[i], voice_ids[col], voices[voice_ids[col]]
            n = int(hit.payload["n_observations"])
            payload = {k: v for k, v in hit.payload.items() if k not in ("tenant", "model_id", "kind")}
            payload.update(n_observations=n + 1, last_seen=now,
                           talk_time=float(hit.payload["talk_time"]) + float(spk.talk_time))
            points.append(NewPoint("voice", vid, _unit(n * _unit(hit.vector) + vectors[i]), payload))
            links[i] = VoiceLink(spk.label, vid, False, float(scores[row, col]), float(spk.talk_time))
        # The rest start new voices, longest first; one that sounds like another speaker of this
        # file is a piece of that speaker the diarizer split off: it stays unlinked.
        siblings = [i for i in links]
        for row, i in sorted(((r, i) for r, i in enumerate(linkable) if i not in links),
                             key=lambda ri: -speakers[ri[1]].talk_time):
            spk = speakers[i]
            like = {j: float(vectors[i] @ vectors[j]) for j in siblings}
            for r, j in enumerate(linkable):  # or like the voice a sibling joined
                if chosen[r] is not None:
                    like[j] = max(like[j], float(scores[row, chosen[r]]))
            twin = max(like, key=like.get, default=None)
            if twin is not None and like[twin] >= self.calibration.link:
                links[i] = VoiceLink(spk.label, None, False, None, float(spk.talk_time), speakers[twin].label)
                continue
            vid = self.collection.id_of(tenant, "voice", f"{file_id}\x1f{spk.label}")
            points.append(NewPoint("voice", vid, vectors[i], {"voice_id": vid, "n_observations": 1,
                                                              "talk_time": float(spk.talk_time),
                                                              "first_seen": now, "last_seen": now}))
            links[i] = VoiceLink(spk.label, vid, True, None, float(spk.talk_time))
            siblings.append(i)
        for i, spk in enumerate(speakers):
            link = links.get(i) or VoiceLink(spk.label, None, False, None, float(spk.talk_time))
            links[i] = link
            if spk.centroid is None:
                continue
            points.append(NewPoint("observation", f"{file_id}\x1f{spk.label}", _unit(spk.centroid), {
                "file_id": file_id, "label": spk.label, "talk_time": float(spk.talk_time),
                "utterance_count": int(spk.utterance_count), "voice_id": link.voice_id,
                "fragment_of": link.fragment_of, "observed_at": now}))
        self.collection.upsert(tenant, points)
        self.collection.flush()
        return [links[i] for i in range(len(speakers))]

    def _member_vectors(self, tenant: str, voice_id: str) -> np.ndarray:
        rows = []
        for p in self.collection.scroll(tenant, "observation", {"voice_id": voice_id}, with_vectors=True):
            rows.append(p.vector)
            if len(rows) >= self.member_sample:
                break
        return np.stack(rows).astype(np.float64) if rows else np.zeros((0, self.collection.dimension))

    def voice(self, tenant: str, voice_id: str) -> Voice:
        found = self.collection.retrieve(tenant, [self.collection.id_of(tenant, "voice", voice_id)])
        if not found:
            raise VoiceNotFoundError(f"no voice {voice_id!r}")
        return Voice.from_payload(found[0].payload)

    def voices(self, tenant: str) -> list[Voice]:
        return sorted((Voice.from_payload(p.payload) for p in self.collection.scroll(tenant, "voice")),
                      key=lambda v: (v.first_seen, v.voice_id))

    def appearances(self, tenant: str, voice_id: str) -> list[Appearance]:
        """Every file the voice was observed in."""
        self.voice(tenant, voice_id)
        found = self.collection.scroll(tenant, "observation", {"voice_id": voice_id})
        return sorted((self._appearance(p) for p in found), key=lambda a: (a.observed_at, a.file_id, a.label))

    def voices_in_file(self, tenant: str, file_id: str) -> list[Appearance]:
        """Every observation (speaker) of ``file_id`` with the voice it was linked to."""
        found = self.collection.scroll(tenant, "observation", {"file_id": file_id})
        return sorted((self._appearance(p) for p in found), key=lambda a: a.label)

    def find(self, tenant: str, vector: np.ndarray, limit: int = 5) -> list[VoiceMatch]:
        """The voices closest to ``vector`` (e.g. a sample's embedding), best first."""
        hits = self.collection.search(tenant, vector, "voice", limit)
        cal = self.calibration
        return [VoiceMatch(Voice.from_payload(h.payload), float(h.score), cal.confidence(h.score),
                           float(h.score) >= cal.link) for h in hits]

    def delete_voice(self, tenant: str, voice_id: str) -> None:
        """Delete a voice and all its observations (from the store's files too)."""
        with self._lock:
            self.voice(tenant, voice_id)
            self.collection.delete(tenant, None, {"voice_id": voice_id})
            self.collection.flush()
            self.collection.purge()

    def delete_file(self, tenant: str, file_id: str) -> int:
        """Delete the observations of ``file_id``; the voices they joined are recomputed or removed."""
        with self._lock:
            obs = list(self.collection.scroll(tenant, "observation", {"file_id": file_id}))
            affected = {p.payload.get("voice_id") for p in obs} - {None}
            doomed = {p.id for p in obs}
            updates, empty = [], []
            for vid in affected:
                rest = [p for p in self.collection.scroll(tenant, "observation", {"voice_id": vid}, with_vectors=True)
                        if p.id not in doomed]
                if not rest:
                    empty.append(self.collection.id_of(tenant, "voice", vid))
                    continue
                centroid = _unit(np.sum([_unit(p.vector) for p in rest], axis=0))
                seen = sorted(p.payload["observed_at"] for p in rest)
                updates.append(NewPoint("voice", vid, centroid, {
                    "voice_id": vid, "n_observations": len(rest),
                    "talk_time": float(sum(p.payload["talk_time"] for p in rest)),
                    "first_seen": seen[0], "last_seen": seen[-1]}))
            self.collection.upsert(tenant, updates)
            self.collection.delete_ids(tenant, sorted(doomed) + empty)
            self.collection.flush()
            self.collection.purge()  # the observations leave the store's files before this returns
            return len(obs)

    @staticmethod
    def _appearance(p: StoredPoint) -> Appearance:
        q = p.payload
        return Appearance(q.get("voice_id"), q["file_id"], q["label"], float(q["talk_time"]), q["observed_at"])
