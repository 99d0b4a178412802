"""Enrollment: quality gates on voice samples, and the enrolled speakers of each tenant.

Crash safety: a speaker is one *speaker record* point (its name, role, metadata, voiceprint and the
ids of its committed samples) plus one point per sample. Writes go samples first, record last; the
record is the commit. Readers only trust samples listed in a record, so a crash at any moment leaves
the old or the new speaker, plus at worst unlisted sample points that :meth:`SpeakerRegistry.vacuum`
removes. Deletion removes the record first, then every point of the speaker.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..config import EmbeddingConfig
from ..embeddings.base import EmbeddingBackend, level_gain
from ..errors import (
    EnrollmentError,
    MetadataError,
    ModelMismatchError,
    SpeakerExistsError,
    SpeakerNotFoundError,
)
from ..result import Result
from .store import POINT_NAMESPACE, Collection, NewPoint, StoredPoint, check_payload

SAMPLE_RATE = 16000
#: Least speech (seconds) an enrollment needs in total, and per sample.
MIN_SPEECH = 3.0
MIN_SAMPLE_SPEECH = 1.0
#: Below this much speech in total the voiceprint is usable but weak: enrollment warns.
RECOMMENDED_SPEECH = 10.0
#: With a diarizer: the main speaker must hold this share of the sample's speech, else it is refused.
DOMINANT_SHARE = 0.7
#: Without a diarizer: two groups of speech windows whose centroids score below this are two voices.
SEPARATION = 0.75
_WINDOW, _HOP = 1.5, 0.75
#: Backends that embed filterbank segments of any length (CAM++): a sample's voice vector comes from its
#: speech joined across pauses, in pieces of at most this many seconds (see :func:`embed_speech`). On
#: LibriSpeech this beats the mean of 1.5 s windows (``benchmarks/voiceprints.py methods``).
SEGMENT_SECONDS = 30.0
_FBANK_RATE = 100  # filterbank frames per second of those backends (10 ms hop)
_MAX_NAME = 200
#: A speaker's metadata (after merging an update into it): at most this deep and this large as JSON.
MAX_METADATA_DEPTH = 8
MAX_METADATA_BYTES = 16384

AudioInput = Any  # a path, bytes, a diarize.audio.Audio, or 16 kHz mono float samples
Diarizer = Callable[[Any], Result]
VAD = Callable[[np.ndarray], Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class EnrollmentSample:
    """One accepted sample: its voice vector, how much speech it held, and what the gates noticed."""

    vector: np.ndarray
    speech_seconds: float
    source: str
    digest: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnrolledSpeaker:
    """An enrolled voice of one tenant."""

    speaker_id: str
    name: str
    role: str | None
    metadata: dict[str, Any]
    n_samples: int
    speech_seconds: float
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"speaker_id": self.speaker_id, "name": self.name, "role": self.role, "metadata": self.metadata,
                "n_samples": self.n_samples, "speech_seconds": round(self.speech_seconds, 2),
                "created_at": self.created_at, "updated_at": self.updated_at}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "EnrolledSpeaker":
        return cls(payload["speaker_id"], payload["name"], payload.get("role"), dict(payload.get("metadata") or {}),
                   len(payload.get("sample_ids") or ()), float(payload.get("speech_seconds", 0.0)),
                   payload.get("created_at", ""), payload.get("updated_at", ""))


@dataclass(frozen=True)
class EnrollmentReport:
    """What :meth:`SpeakerRegistry.enroll` did."""

    speaker: EnrolledSpeaker
    created: bool
    samples_added: int
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- quality gates


def to_samples(audio: AudioInput) -> tuple[np.ndarray, str, Any]:
    """16 kHz mono float32 samples, a printable source name, and the decoded input (for a diarizer)."""
    if isinstance(audio, np.ndarray):
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=0)
        if x.ndim != 1:
            raise EnrollmentError(f"sample array must be 1-D mono 16 kHz audio, got shape {audio.shape}")
        from ..audio import Audio

        return x, "array", Audio(np.ascontiguousarray(x[None, :]), SAMPLE_RATE)
    name = "audio"
    if not (hasattr(audio, "mono") and hasattr(audio, "sample_rate")):
        from ..audio import load_audio  # the pipeline's decoder; raises AudioError subclasses

        name = str(audio) if isinstance(audio, (str, PathLike)) else "bytes"
        audio = load_audio(audio)
    return np.asarray(audio.mono(), dtype=np.float32).reshape(-1), name, audio


def _windows(regions: Sequence[tuple[float, float]], window: float = _WINDOW,
             hop: float = _HOP) -> tuple[np.ndarray, np.ndarray]:
    """1.5 s windows every 0.75 s inside each speech region (a shorter region of 0.5 s or more is one window)."""
    win, hop = int(window * SAMPLE_RATE), int(hop * SAMPLE_RATE)
    bounds: list[tuple[int, int]] = []
    for a, b in regions:
        s, e = int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)
        if e - s < win:
            if e - s >= SAMPLE_RATE // 2:
                bounds.append((s, e))
            continue
        bounds += [(w, w + win) for w in range(s, e - win + 1, hop)]
        if (e - win - s) % hop:
            bounds.append((e - win, e))
    arr = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def embed_speech(backend: Any, fbank: np.ndarray, frames: np.ndarray, max_frames: int) -> np.ndarray:
    """Unit voice vector of the filterbank ``frames`` (indices, in time order) of one voice.

    For backends that embed filterbank segments of any length (``embed_features``: CAM++). The frames are
    joined across pauses and cut into equal pieces of at most ``max_frames``; the vector is the
    frame-weighted mean of the pieces' unit vectors.
    """
    frames = np.asarray(frames, dtype=np.int64)
    pieces = [fbank[p] for p in np.array_split(frames, max(1, -(-len(frames) // max_frames)))]
    vectors = backend.embed_features(pieces)
    weights = np.array([len(p) for p in pieces], dtype=np.float64)
    return _unit((weights[:, None] * vectors).sum(axis=0))


def prepare_sample(audio: AudioInput, backend: EmbeddingBackend, *, vad: VAD | None = None,
                   diarizer: Diarizer | None = None, dominant_share: float = DOMINANT_SHARE,
                   separation: float = SEPARATION,
                   target_level_db: float | None = EmbeddingConfig().speech_level_db) -> EnrollmentSample:
    """Check one enrollment sample and embed its (dominant) speaker's speech.

    Refuses (EnrollmentError) silence, samples without speech, and samples where no single voice
    holds ``dominant_share`` of the speech; a dominant voice among others is kept with a warning.
    Without ``diarizer`` voices are told apart by splitting the speech windows in two and comparing
    the halves' centroids against ``separation`` (a cosine), the speech embedded at ``target_level_db``
    as the pipeline embeds it.
    """
    samples, source, decoded = to_samples(audio)
    warnings: list[str] = []
    if samples.size < SAMPLE_RATE * MIN_SAMPLE_SPEECH or not np.all(np.isfinite(samples)):
        raise EnrollmentError(f"{source}: too short or corrupt to enroll ({samples.size / SAMPLE_RATE:.1f} s)")
    peak = float(np.max(np.abs(samples)))
    if peak < 1e-4:
        raise EnrollmentError(f"{source}: the sample is silent")
    if diarizer is not None:
        result = diarizer(decoded)
        vector, speech = _dominant(result, source, dominant_share, separation, warnings)
    else:
        if vad is None:
            from ..vad import SileroVAD

            vad = SileroVAD()  # the pipeline's VAD with default settings (loads in about 0.1 s)
        regions = [(float(a), float(b)) for a, b in vad(samples)]
        speech = float(sum(b - a for a, b in regions))
        if speech < MIN_SAMPLE_SPEECH:
            raise EnrollmentError(f"{source}: no speech found ({speech:.1f} s); silence or noise cannot be enrolled")
        starts, ends = _windows(regions)
        from ..vad import frame_energies_db, speech_level_db

        gain = level_gain(speech_level_db(np.asarray(regions), frame_energies_db(samples)), target_level_db)
        fbank = None
        if hasattr(backend, "embed_features") and hasattr(backend, "features"):  # CAM++: windows are fbank slices
            fbank = backend.features(samples, gain=gain)
            first, count = backend.window_frames(starts, ends, len(fbank))
            windows = backend.embed_features([fbank[a:a + c] for a, c in zip(first, count)])
        else:
            windows = backend.embed_windows(samples, starts, ends, gain=gain)
        vector, main_share, main_windows = _main_voice_windows(windows, separation)
        if main_share < dominant_share:
            raise EnrollmentError(
                f"{source}: the sample seems to hold several voices and none dominant (the main one has "
                f"{main_share:.0%} of the speech); enroll a clean sample of one speaker")
        if main_share < 0.9:
            warnings.append(f"{source}: another voice or noise in about {1 - main_share:.0%} of the speech; "
                            "enrolled the main voice")
            speech *= main_share
        if fbank is not None:  # the main voice's speech in long pieces, not the mean of its 1.5 s windows
            frames = voice_frames(first, count, main_windows, len(fbank))
            vector = embed_speech(backend, fbank, frames, int(SEGMENT_SECONDS * _FBANK_RATE))
    if speech < MIN_SAMPLE_SPEECH:
        raise EnrollmentError(f"{source}: only {speech:.1f} s of speech; each sample needs {MIN_SAMPLE_SPEECH:.0f} s")
    vector = np.asarray(vector, dtype=np.float32)
    digest = hashlib.sha256(np.round(vector, 5).astype(np.float32).tobytes()).hexdigest()[:32]
    return EnrollmentSample(vector, speech, source, digest, tuple(warnings))


def two_means(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Split unit window embeddings in two groups (spherical two-means from the two most distant windows).

    Returns the two unit centroids and each window's group, or None when there is one group.
    """
    W = np.asarray(windows, dtype=np.float64)
    W = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    if len(W) < 4:
        return None
    sims = W @ W.T
    i, j = np.unravel_index(np.argmin(sims), sims.shape)
    centroids = W[[i, j]]
    for _ in range(20):
        labels = np.argmax(W @ centroids.T, axis=1)
        if labels.min() == labels.max():
            return None
        updated = np.stack([_unit(W[labels == k].mean(axis=0)) for k in (0, 1)])
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return centroids, labels


def _main_voice(windows: np.ndarray, separation: float) -> tuple[np.ndarray, float]:
    """Unit centroid of the main voice among window embeddings, and its share of the windows.

    One voice (all windows) unless two-means finds groups whose centroids score below ``separation``.
    """
    vector, share, _ = _main_voice_windows(windows, separation)
    return vector, share


def _main_voice_windows(windows: np.ndarray, separation: float) -> tuple[np.ndarray, float, np.ndarray]:
    """:func:`_main_voice` and which windows hold the main voice (a boolean per window)."""
    split = two_means(windows)
    if split is None or float(split[0][0] @ split[0][1]) >= separation:
        return _unit(np.asarray(windows, dtype=np.float64).mean(axis=0)), 1.0, np.ones(len(windows), dtype=bool)
    centroids, labels = split
    main = int(np.argmax(np.bincount(labels, minlength=2)))
    return centroids[main], float(np.mean(labels == main)), labels == main


def voice_frames(first: np.ndarray, count: np.ndarray, mine: np.ndarray, n_frames: int) -> np.ndarray:
    """Filterbank frames of one voice: inside one of its windows (``mine``; window i covers frames
    ``first[i]`` to ``first[i] + count[i]``) and, where that leaves any, inside no other window."""
    inside = np.zeros(n_frames, dtype=bool)
    others = np.zeros(n_frames, dtype=bool)
    for a, c, m in zip(first, count, mine):
        (inside if m else others)[a:a + c] = True
    clean = np.flatnonzero(inside & ~others)
    return clean if len(clean) else np.flatnonzero(inside)


def _dominant(result: Result, source: str, share: float, separation: float,
              warnings: list[str]) -> tuple[np.ndarray, float]:
    """The main voice of a diarized sample: its largest speaker plus any speaker that sounds the same
    (centroids at or above ``separation``: the diarizer split one voice)."""
    speakers = sorted((s for s in result.speakers if s.talk_time > 0), key=lambda s: s.talk_time, reverse=True)
    if not speakers:
        raise EnrollmentError(f"{source}: no speech found; silence or noise cannot be enrolled")
    if speakers[0].centroid is None:
        raise EnrollmentError(f"{source}: the diarizer returned no voice vector for {speakers[0].label}")
    main = _unit(speakers[0].centroid)
    same = [s for s in speakers if s.centroid is not None and float(_unit(s.centroid) @ main) >= separation]
    voice = float(sum(s.talk_time for s in same))
    total = float(sum(s.talk_time for s in speakers))
    if len(same) < len(speakers):
        if voice / total < share:
            parts = ", ".join(f"{s.label} {s.talk_time / total:.0%}" for s in speakers)
            raise EnrollmentError(f"{source}: {len(speakers)} voices and none dominant ({parts}); "
                                  "enroll a sample of one speaker")
        warnings.append(f"{source}: {len(speakers) - len(same) + 1} voices found; enrolled the main one "
                        f"({voice:.1f} s of {total:.1f} s)")
    vector = _unit(np.sum([s.talk_time * _unit(s.centroid) for s in same], axis=0))
    return vector.astype(np.float32), voice


# --------------------------------------------------------------------------- the enrolled speakers


def name_key(name: str) -> str:
    """The case- and space-insensitive form of a speaker name that must be unique per tenant."""
    return " ".join(str(name).split()).casefold()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise EnrollmentError("a speaker name must be a non-empty string")
    if len(name) > _MAX_NAME or any(ord(ch) < 32 for ch in name):
        raise EnrollmentError(f"invalid speaker name {name[:40]!r}: at most {_MAX_NAME} printable characters")
    return " ".join(name.split())


def check_metadata(metadata: Any) -> dict[str, Any]:
    """``metadata`` as a dict if it is a JSON object of at most ``MAX_METADATA_DEPTH`` levels and
    ``MAX_METADATA_BYTES`` bytes with finite numbers, else MetadataError (before anything reaches the store)."""
    return check_payload(metadata, max_depth=MAX_METADATA_DEPTH, max_bytes=MAX_METADATA_BYTES, what="metadata")


def _check_role(role: Any) -> Any:
    if role is not None and (not isinstance(role, str) or len(role) > _MAX_NAME):
        raise EnrollmentError(f"a role must be a string of at most {_MAX_NAME} characters")
    return role


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class SpeakerRegistry:
    """Enrolled speakers of every tenant in one collection (one embedding model)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._lock = threading.RLock()

    def _record(self, tenant: str, name: str) -> StoredPoint | None:
        found = list(self.collection.scroll(tenant, "speaker", {"name_key": name_key(name)}))
        return found[0] if found else None

    def get(self, tenant: str, name: str) -> EnrolledSpeaker:
        record = self._record(tenant, name)
        if record is None:
            raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
        return EnrolledSpeaker.from_payload(record.payload)

    def list(self, tenant: str) -> list[EnrolledSpeaker]:
        speakers = [EnrolledSpeaker.from_payload(p.payload) for p in self.collection.scroll(tenant, "speaker")]
        return sorted(speakers, key=lambda s: name_key(s.name))

    def nearest(self, tenant: str, vector: np.ndarray, limit: int = 5) -> list[tuple[EnrolledSpeaker, np.ndarray]]:
        """The ``limit`` enrolled voiceprints closest to ``vector``, with their unit vectors."""
        hits = self.collection.search(tenant, vector, "speaker", limit, with_vectors=True)
        return [(EnrolledSpeaker.from_payload(h.payload), np.asarray(h.vector, dtype=np.float64)) for h in hits]

    def enroll(self, tenant: str, name: str, samples: Sequence[EnrollmentSample], *, role: str | None = None,
               metadata: Mapping[str, Any] | None = None, consistency: float | None = None,
               model_id: str | None = None, before_commit: Callable[[], None] | None = None) -> EnrollmentReport:
        """Create ``name`` from ``samples``, or add them to the existing speaker and update its voiceprint.

        ``consistency``: refuse any sample scoring below it against the speaker's other samples.
        ``before_commit`` runs between writing the samples and committing the record (tests use it).
        """
        name = _check_name(name)
        if not samples:
            raise EnrollmentError("enrollment needs at least one sample")
        if model_id is not None and model_id != self.collection.model_id:
            raise ModelMismatchError(f"samples embedded by {model_id!r} cannot enroll into the "
                                     f"{self.collection.model_id!r} voiceprint store")
        metadata = check_metadata(metadata) if metadata is not None else None
        _check_role(role)
        with self._lock:
            record = self._record(tenant, name)
            old_ids: list[str] = list(record.payload.get("sample_ids") or []) if record else []
            old = self.collection.retrieve(tenant, old_ids, with_vectors=True) if old_ids else []
            old_by_id = {p.id: p for p in old}
            old = [old_by_id[i] for i in old_ids if i in old_by_id]
            speaker_id = record.payload["speaker_id"] if record else self._new_speaker_id(tenant, name)
            new: dict[str, EnrollmentSample] = {}
            for s in samples:
                sid = self.collection.id_of(tenant, "sample", f"{speaker_id}/{s.digest}")
                if sid not in old_by_id:
                    new[sid] = s
            vectors = [p.vector for p in old] + [s.vector for s in new.values()]
            weights = [float(p.payload.get("speech_seconds", 1.0)) for p in old] + \
                      [s.speech_seconds for s in new.values()]
            total_speech = float(sum(weights))
            if total_speech < MIN_SPEECH:
                raise EnrollmentError(f"{name}: only {total_speech:.1f} s of speech in all samples; "
                                      f"enrollment needs at least {MIN_SPEECH:.0f} s")
            if consistency is not None and len(vectors) > 1:
                self._check_consistency(name, vectors, weights, len(old), list(new.values()), consistency)
            warnings = [w for s in samples for w in s.warnings]
            if total_speech < RECOMMENDED_SPEECH:
                warnings.append(f"{name}: {total_speech:.1f} s of speech; {RECOMMENDED_SPEECH:.0f} s or more "
                                "gives a more reliable voiceprint")
            capped = np.minimum(np.asarray(weights), 60.0)
            voiceprint = _unit(np.sum([w * _unit(v) for w, v in zip(capped, vectors)], axis=0))
            now = _now()
            old_metadata = dict(record.payload.get("metadata") or {}) if record else {}
            merged = check_metadata({**old_metadata, **dict(metadata or {})})
            sample_points = [
                NewPoint("sample", f"{speaker_id}/{s.digest}", s.vector,
                         {"speaker_id": speaker_id, "speech_seconds": s.speech_seconds, "source": s.source[-200:],
                          "created_at": now})
                for s in new.values()]
            self.collection.upsert(tenant, sample_points)
            if before_commit is not None:
                before_commit()
            payload = {
                "speaker_id": speaker_id, "name": name, "name_key": name_key(name),
                "role": role if role is not None else (record.payload.get("role") if record else None),
                "metadata": merged,
                "sample_ids": [p.id for p in old] + list(new),
                "speech_seconds": total_speech,
                "created_at": record.payload.get("created_at", now) if record else now, "updated_at": now,
            }
            self.collection.upsert(tenant, [NewPoint("speaker", speaker_id, voiceprint, payload)])
            self.collection.flush()
            return EnrollmentReport(EnrolledSpeaker.from_payload(payload), record is None, len(new), warnings)

    def _new_speaker_id(self, tenant: str, name: str) -> str:
        """Derived from the name, so concurrent first enrollments of one name converge on one record;
        a suffix skips ids still held by a renamed speaker."""
        for n in range(1000):
            candidate = uuid.uuid5(POINT_NAMESPACE, f"{tenant}\x1f{name_key(name)}\x1f{n}").hex
            if not self.collection.retrieve(tenant, [self.collection.id_of(tenant, "speaker", candidate)]):
                return candidate
        return uuid.uuid4().hex

    @staticmethod
    def _check_consistency(name: str, vectors: list, weights: list, n_old: int,
                           new: list[EnrollmentSample], threshold: float) -> None:
        V = np.stack([_unit(v) for v in vectors])
        w = np.minimum(np.asarray(weights), 60.0)
        total = (w[:, None] * V).sum(axis=0)
        for j, s in enumerate(new, start=n_old):
            rest = _unit(total - w[j] * V[j])
            score = float(V[j] @ rest)
            if score < threshold:
                raise EnrollmentError(
                    f"{s.source}: does not sound like the other samples of {name} (score {score:.2f} < "
                    f"{threshold:.2f}); check it is the same person")

    def rename(self, tenant: str, name: str, new_name: str) -> EnrolledSpeaker:
        """Rename a speaker (one write); refuses a name another speaker of the tenant already has."""
        new_name = _check_name(new_name)
        with self._lock:
            record = self._record(tenant, name)
            if record is None:
                raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
            clash = self._record(tenant, new_name)
            if clash is not None and clash.id != record.id:
                raise SpeakerExistsError(f"a speaker named {new_name!r} is already enrolled")
            update = {"name": new_name, "name_key": name_key(new_name), "updated_at": _now()}
            self.collection.set_payload(tenant, [record.id], update)
            self.collection.flush()
            return EnrolledSpeaker.from_payload({**record.payload, **update})

    def update(self, tenant: str, name: str, *, role: str | None = None,
               metadata: Mapping[str, Any] | None = None) -> EnrolledSpeaker:
        """Change a speaker's role and/or merge ``metadata`` into its metadata (refused whole if the merge
        would not pass :func:`check_metadata`)."""
        metadata = check_metadata(metadata) if metadata is not None else None
        _check_role(role)
        with self._lock:
            record = self._record(tenant, name)
            if record is None:
                raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
            update: dict[str, Any] = {"updated_at": _now()}
            if role is not None:
                update["role"] = role
            if metadata is not None:
                update["metadata"] = check_metadata({**(record.payload.get("metadata") or {}), **metadata})
            self.collection.set_payload(tenant, [record.id], update)
            self.collection.flush()
            return EnrolledSpeaker.from_payload({**record.payload, **update})

    def delete(self, tenant: str, name: str) -> EnrolledSpeaker:
        """Delete a speaker and every vector stored for it, from the store's files too (see ``Collection.purge``)."""
        with self._lock:
            record = self._record(tenant, name)
            if record is None:
                raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
            speaker_id = record.payload["speaker_id"]
            self.collection.delete_ids(tenant, [record.id])
            self.collection.delete(tenant, None, {"speaker_id": speaker_id})
            self.collection.flush()
            self.collection.purge()  # the voiceprint leaves the store's files before this returns
            return EnrolledSpeaker.from_payload(record.payload)

    def vacuum(self, tenant: str) -> int:
        """Remove sample points no speaker record lists (left by a crash); returns how many."""
        with self._lock:
            listed = {i for p in self.collection.scroll(tenant, "speaker") for i in p.payload.get("sample_ids") or ()}
            orphans = [p.id for p in self.collection.scroll(tenant, "sample") if p.id not in listed]
            self.collection.delete_ids(tenant, orphans)
            if orphans:
                self.collection.flush()
                self.collection.purge()
            return len(orphans)
