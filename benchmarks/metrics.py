"""Scores: DER/JER through pyannote.metrics, overlapped-speech miss, speaker-count errors, real-time factor,
EER/minDCF."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from pyannote.core import Annotation, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate
from sklearn.metrics import roc_curve

UNKNOWN = "UNKNOWN"
COMPONENTS = ("missed detection", "false alarm", "confusion", "total")
# pyannote's detailed DER components (seconds; "total" is the reference speaker-time scored).
DER_COMPONENTS = ("total", "correct", "missed detection", "false alarm", "confusion")
OVERLAP_FIELDS = ("reference", "detected", "hypothesis", "speaker_time", "speaker_missed")


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


def overlap_seconds(reference: Annotation, hypothesis: Annotation, uem: Timeline | None = None) -> dict[str, float]:
    """How a hypothesis covers the reference's overlapped speech, in seconds, inside the UEM.

    ``reference``: time where two or more reference speakers talk (pyannote's ``get_overlap``: tracks of different
    labels); ``detected``: the part of it where the hypothesis also has two or more speakers; ``hypothesis``: all
    time where the hypothesis has two or more speakers (inside the UEM, overlap or not in the reference);
    ``speaker_time``: reference speaker-time inside the reference overlap (each overlapping speaker counted);
    ``speaker_missed``: the part of that the hypothesis lacks, max(0, n_ref - n_hyp) integrated, which is the
    strict DER's missed detection restricted to the reference overlap (it needs no speaker mapping).
    """
    ref = reference.crop(uem) if uem is not None else reference
    hyp = hypothesis.crop(uem) if uem is not None else hypothesis
    ref_ov, hyp_ov = ref.get_overlap(), hyp.get_overlap()
    out = dict.fromkeys(OVERLAP_FIELDS, 0.0)
    out["reference"] = float(ref_ov.duration())
    out["hypothesis"] = float(hyp_ov.duration())
    if not ref_ov:
        return out
    if hyp_ov:
        out["detected"] = float(ref_ov.crop(hyp_ov, mode="intersection").support().duration())
    inside = strict_der()(reference, hypothesis, uem=ref_ov, detailed=True)
    out["speaker_time"] = float(inside["total"])
    out["speaker_missed"] = float(inside["missed detection"])
    return out


def overlap_rates(seconds: dict[str, float]) -> dict[str, float | None]:
    """``overlap_missed`` / ``overlap_detected``: shares of the reference overlap where the hypothesis has fewer than
    two / at least two speakers; ``overlap_precision``: share of the hypothesis's overlap that is reference overlap;
    ``overlap_speaker_miss``: share of the reference speaker-time in overlap that is missed. ``None`` where the
    denominator is zero (no reference overlap, or no hypothesis overlap for the precision)."""
    ref, hyp, spk = seconds["reference"], seconds["hypothesis"], seconds["speaker_time"]
    return {
        "overlap_missed": (ref - seconds["detected"]) / ref if ref else None,
        "overlap_detected": seconds["detected"] / ref if ref else None,
        "overlap_precision": seconds["detected"] / hyp if hyp else None,
        "overlap_speaker_miss": seconds["speaker_missed"] / spk if spk else None,
    }


class Scorer:
    """Accumulates one system's scores over one set, pyannote-style (rates from summed components)."""

    def __init__(self) -> None:
        self.strict = strict_der()
        self.forgiving = forgiving_der()
        self.jer = JaccardErrorRate(collar=0.0, skip_overlap=False)
        self.files: list[dict[str, Any]] = []
        self._overlap = dict.fromkeys(OVERLAP_FIELDS, 0.0)
        self._by_count: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COMPONENTS, 0.0))

    def add(self, reference: Annotation, hypothesis: Annotation, uem: Timeline | None, true_speakers: int,
            wall_s: float, duration: float, **extra: Any) -> dict[str, Any]:
        """Score one file; returns (and keeps) its row."""
        strict = self.strict(reference, hypothesis, uem=uem, detailed=True)
        forgiving = self.forgiving(reference, hypothesis, uem=uem)
        jer = self.jer(reference, hypothesis, uem=uem)
        overlap = overlap_seconds(reference, hypothesis, uem)
        for name in OVERLAP_FIELDS:
            self._overlap[name] += overlap[name]
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
            **overlap_rates(overlap),
            "overlap_s": round(overlap["reference"], 3),
            "components": {name: strict[name] for name in DER_COMPONENTS},
            "wall_s": round(wall_s, 3),
            "rtf": wall_s / duration if duration else 0.0,
            **extra,
        }
        if "cpu_s" in row:
            row["cpu_rtf"] = row["cpu_s"] / duration if duration else 0.0
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
        # CPU seconds per audio second, where every file has them (process CPU time of the call).
        cpu = sum(r["cpu_s"] for r in self.files) if all("cpu_s" in r for r in self.files) else None
        return {
            "files": len(self.files),
            "hours": round(dur / 3600, 3),
            "der": abs(self.strict),
            "der_forgiving": abs(self.forgiving),
            "miss": acc["missed detection"] / total,
            "false_alarm": acc["false alarm"] / total,
            "confusion": acc["confusion"] / total,
            "jer": abs(self.jer),
            **overlap_rates(self._overlap),
            "overlap_seconds": dict(self._overlap),
            "components": {"strict": {k: acc[k] for k in DER_COMPONENTS},
                           "forgiving": {k: self.forgiving[:][k] for k in DER_COMPONENTS}},
            **count_errors(self.files),
            "rtf": wall / dur if dur else 0.0,
            **({"cpu_rtf": cpu / dur if dur else 0.0} if cpu is not None else {}),
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
