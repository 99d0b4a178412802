"""Per-model decision thresholds and score-to-confidence calibration, measured by ``benchmarks/voiceprints.py``.

The values live in ``models/thresholds.json`` (with the score distributions behind them in
``models/calibration/``); :data:`BUILTIN` mirrors that file so an installed package needs no data file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import VoiceprintError

#: Copy of ``models/thresholds.json`` (a test keeps the two equal).
BUILTIN: dict[str, dict] = {
    "resemblyzer-ge2e": {"identify": 0.805, "link": 0.82, "link_member": 0.85, "consistency": 0.75,
                         "separation": 0.65, "confidence_a": 85.5128, "confidence_b": -66.796},
    "campplus-zh-en-common": {"identify": 0.44, "link": 0.515, "link_member": 0.55, "consistency": 0.55,
                              "separation": 0.4, "confidence_a": 26.7625, "confidence_b": -11.7755},
}


@dataclass(frozen=True)
class Calibration:
    """Cosine thresholds of one embedding model.

    identify: accept an enrolled speaker at or above this score.
    link / link_member: join a fingerprinted voice when the score to its centroid reaches ``link`` and
        the score to its members (low percentile) reaches ``link_member`` (the anti-chaining guard).
    consistency: reject an enrollment sample scoring below this against the speaker's other samples.
    separation: without a diarizer, two halves of a sample whose centroids score below this are two voices.
    confidence_a, confidence_b: ``P(same) = 1 / (1 + exp(-(a * score + b)))``, fitted on equal priors.
    """

    model_id: str
    identify: float
    link: float
    link_member: float
    consistency: float
    separation: float
    confidence_a: float
    confidence_b: float

    def confidence(self, score: float) -> float:
        """Calibrated probability that ``score`` compares two recordings of the same voice."""
        z = self.confidence_a * float(score) + self.confidence_b
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


#: Read from the source tree, like ``models/registry.json``.
THRESHOLDS_PATH = Path(__file__).resolve().parents[2] / "models" / "thresholds.json"


def _table() -> dict[str, dict]:
    path = THRESHOLDS_PATH
    if path.is_file():
        try:
            return json.loads(path.read_text())["models"]
        except (OSError, ValueError, KeyError) as exc:
            raise VoiceprintError(f"cannot read thresholds from {path}: {exc}") from exc
    return BUILTIN


def load_calibration(model_id: str) -> Calibration:
    """The measured calibration of ``model_id``; raises VoiceprintError when it was never measured."""
    entry = _table().get(model_id)
    if entry is None:
        raise VoiceprintError(
            f"no calibrated thresholds for embedding model {model_id!r}: run benchmarks/voiceprints.py "
            "calibrate, or pass a Calibration explicitly")
    fields = {k: entry[k] for k in Calibration.__dataclass_fields__ if k != "model_id"}
    return Calibration(model_id=model_id, **fields)
