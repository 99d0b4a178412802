"""Scores: DER/JER through pyannote.metrics, speaker-count errors, real-time factor, EER/minDCF."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from pyannote.core import Annotation, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate
from sklearn.metrics import roc_curve

UNKNOWN = "UNKNOWN"
COMPONENTS = ("missed detection", "false alarm", "confusion", "total")


def strict_der() -> DiarizationErrorRate:
    """No collar, overlapping speech scored."""
    return DiarizationErrorRate(collar=0.0, skip_overlap=False)


def forgiving_der() -> DiarizationErrorRate:
    """pyannote collar 0.5 s (0.25 s either side of each reference boundary), overlap not scored."""
    return DiarizationErrorRate(collar=0.5, skip_overlap=True)


def hyp_speakers(hypothesis: Annotation) -> int:
    return sum(1 for label in hypothesis.labels() if label != UNKNOWN)


def overlap_share(reference: Annotation, uem: Timeline | None = None) -> float:
    """Share of the speech (union over speakers) where two or more reference speakers talk."""
    ref = reference.crop(uem) if uem is not None else reference
    speech = ref.get_timeline().support().duration()
    return float(ref.get_overlap().duration() / speech) if speech > 0 else 0.0


class Scorer:
    """Accumulates one system's scores over one set, pyannote-style (rates from summed components)."""

    def __init__(self) -> None:
        self.strict = strict_der()
        self.forgiving = forgiving_der()
        self.jer = JaccardErrorRate(collar=0.0, skip_overlap=False)
        self.files: list[dict[str, Any]] = []
        self._by_count: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COMPONENTS, 0.0))

    def add(self, reference: Annotation, hypothesis: Annotation, uem: Timeline | None, true_speakers: int,
            wall_s: float, duration: float, **extra: Any) -> dict[str, Any]:
        """Score one file; returns (and keeps) its row."""
        strict = self.strict(reference, hypothesis, uem=uem, detailed=True)
        forgiving = self.forgiving(reference, hypothesis, uem=uem)
        jer = self.jer(reference, hypothesis, uem=uem)
        group = self._by_count[true_speakers]
        for name in COMPONENTS:
            group[name] += strict[name]
        total = strict["total"]
        row = {
            "uri": reference.uri,
            "duration": round(duration, 3),
            "true_speakers": true_speakers,
            "pred_speakers": hyp_speakers(hypothesis),
            "der": strict["diarization error rate"],
            "der_forgiving": forgiving,
            "miss": strict["missed detection"] / total if total else 0.0,
            "false_alarm": strict["false alarm"] / total if total else 0.0,
            "confusion": strict["confusion"] / total if total else 0.0,
            "jer": jer,
            "wall_s": round(wall_s, 3),
            "rtf": wall_s / duration if duration else 0.0,
            **extra,
        }
        self.files.append(row)
        return row

    def summary(self) -> dict[str, Any]:
        """Set-level numbers: DER/JER from accumulated components, count errors, RTF = sum(wall)/sum(duration)."""
        if not self.files:
            return {"files": 0}
        acc = self.strict[:]
        total = acc["total"] or 1.0
        wall = sum(r["wall_s"] for r in self.files)
        dur = sum(r["duration"] for r in self.files)
        return {
            "files": len(self.files),
            "hours": round(dur / 3600, 3),
            "der": abs(self.strict),
            "der_forgiving": abs(self.forgiving),
            "miss": acc["missed detection"] / total,
            "false_alarm": acc["false alarm"] / total,
            "confusion": acc["confusion"] / total,
            "jer": abs(self.jer),
            **count_errors(self.files),
            "rtf": wall / dur if dur else 0.0,
            "per_count": self.per_count(),
        }

    def per_count(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for k in sorted(self._by_count):
            rows = [r for r in self.files if r["true_speakers"] == k]
            out[str(k)] = {
                "files": len(rows),
                "der": self.strict.compute_metric(dict(self._by_count[k])),
                **count_errors(rows),
            }
        return out


def count_errors(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Exact speaker-count rate and mean absolute count error."""
    if not rows:
        return {"count_exact": 0.0, "count_mae": 0.0}
    err = np.array([abs(r["pred_speakers"] - r["true_speakers"]) for r in rows], dtype=float)
    return {"count_exact": float(np.mean(err == 0)), "count_mae": float(np.mean(err))}


def eer(target: np.ndarray, nontarget: np.ndarray) -> float:
    """Equal error rate of higher-is-same-speaker scores (linear interpolation at the crossing)."""
    fnr, fpr = _error_curves(target, nontarget)
    diff = fnr - fpr
    i = int(np.flatnonzero(diff <= 0)[0])
    if i == 0 or diff[i] == 0:
        return float((fnr[i] + fpr[i]) / 2)
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def min_dcf(target: np.ndarray, nontarget: np.ndarray, p_target: float) -> float:
    """Normalised minimum detection cost with C_miss = C_fa = 1."""
    fnr, fpr = _error_curves(target, nontarget)
    cost = p_target * fnr + (1 - p_target) * fpr
    return float(np.min(cost) / min(p_target, 1 - p_target))


def _error_curves(target: np.ndarray, nontarget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([target, nontarget])
    labels = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return 1.0 - tpr, fpr
