"""Measured thresholds: the data file and the built-in copy agree, and unknown models are refused."""

from __future__ import annotations

import json

import pytest

from diarize.errors import VoiceprintError
from diarize.voiceprints import calibration
from diarize.voiceprints.calibration import BUILTIN, THRESHOLDS_PATH, load_calibration


def test_builtin_copy_matches_models_thresholds_json():
    table = json.loads(THRESHOLDS_PATH.read_text())["models"]
    assert set(table) == set(BUILTIN)
    for model, values in BUILTIN.items():
        assert {k: table[model][k] for k in values} == values
        assert (THRESHOLDS_PATH.parent / table[model]["measured"]).is_file()


def test_resemblyzer_calibration_is_ordered_sensibly():
    cal = load_calibration("resemblyzer-ge2e")
    assert 0.5 < cal.consistency < cal.identify < 1.0
    assert cal.confidence(cal.identify + 0.1) > 0.95 > 0.05 > cal.confidence(cal.identify - 0.2)
    assert cal.confidence(0.7) < cal.confidence(0.8) < cal.confidence(0.9)


def test_unknown_model_is_refused(monkeypatch, tmp_path):
    with pytest.raises(VoiceprintError, match="no calibrated thresholds"):
        load_calibration("ecapa-unmeasured")
    monkeypatch.setattr(calibration, "THRESHOLDS_PATH", tmp_path / "absent.json")
    assert load_calibration("resemblyzer-ge2e").identify == BUILTIN["resemblyzer-ge2e"]["identify"]
