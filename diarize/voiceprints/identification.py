"""Name diarized speakers: open-set, one-to-one matching of speaker centroids against enrolled voiceprints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import VoiceprintError
from ..result import Result, Speaker
from .calibration import Calibration
from .enrollment import EnrolledSpeaker, SpeakerRegistry


@dataclass(frozen=True)
class SpeakerMatch:
    """The outcome for one diarized speaker.

    ``name`` is None when no enrolled voiceprint reached the threshold (open set); ``score`` and
    ``confidence`` then describe the best candidate, or are None when nothing was enrolled.
    """

    label: str
    name: str | None
    speaker_id: str | None
    role: str | None
    score: float | None
    confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("score", "confidence"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        return out


def assign(scores: np.ndarray, threshold: float) -> list[int | None]:
    """Optimal one-to-one assignment of rows to columns maximising the total score above ``threshold``.

    Returns, for each row, the assigned column or None; pairs below the threshold are never assigned.
    """
    scores = np.asarray(scores, dtype=np.float64)
    out: list[int | None] = [None] * scores.shape[0]
    if scores.size == 0:
        return out
    gain = np.where(scores >= threshold, scores - threshold + 1e-6, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    for r, c in zip(rows, cols):
        if gain[r, c] > 0:
            out[r] = int(c)
    return out


def identify_vectors(labels: Sequence[str], vectors: Sequence[np.ndarray | None], registry: SpeakerRegistry,
                     tenant: str, calibration: Calibration, threshold: float | None = None) -> list[SpeakerMatch]:
    """Match each labelled vector (a diarized speaker's centroid, or None) against ``tenant``'s speakers."""
    if len(labels) != len(vectors):
        raise VoiceprintError("one label per vector is needed")
    threshold = calibration.identify if threshold is None else float(threshold)
    matches = [SpeakerMatch(label, None, None, None, None, None) for label in labels]
    present = [i for i, v in enumerate(vectors) if v is not None]
    # With k >= len(present) candidates per speaker, some optimal assignment uses only candidates.
    candidates: dict[str, tuple[EnrolledSpeaker, np.ndarray]] = {}
    for i in present:
        for spk, vec in registry.nearest(tenant, vectors[i], limit=len(present) + 4):
            candidates.setdefault(spk.speaker_id, (spk, vec))
    if not present or not candidates:
        return matches
    enrolled = list(candidates.values())
    scores = np.stack([_unit(vectors[i]) for i in present]) @ np.stack([vec for _, vec in enrolled]).T
    for row, (i, col) in enumerate(zip(present, assign(scores, threshold))):
        if col is None:
            best = float(scores[row].max())
            matches[i] = SpeakerMatch(labels[i], None, None, None, best, calibration.confidence(best))
        else:
            spk, score = enrolled[col][0], float(scores[row, col])
            matches[i] = SpeakerMatch(labels[i], spk.name, spk.speaker_id, spk.role, score,
                                      calibration.confidence(score))
    return matches


def identify_speakers(speakers: Sequence[Speaker], registry: SpeakerRegistry, tenant: str,
                      calibration: Calibration, threshold: float | None = None) -> list[SpeakerMatch]:
    """Match every diarized speaker of one file (by its centroid)."""
    return identify_vectors([s.label for s in speakers], [s.centroid for s in speakers], registry, tenant,
                            calibration, threshold)


def apply_names(result: Result, matches: Sequence[SpeakerMatch]) -> Result:
    """A copy of ``result`` whose identified speakers carry their enrolled name as label."""
    rename = {m.label: m.name for m in matches if m.name}
    speakers = [dataclasses.replace(s, label=rename.get(s.label, s.label)) for s in result.speakers]
    utterances = [dataclasses.replace(u, speaker=rename.get(u.speaker, u.speaker)) for u in result.utterances]
    return dataclasses.replace(result, speakers=speakers, utterances=utterances)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)
