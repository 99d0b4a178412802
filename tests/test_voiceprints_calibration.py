"""Measured thresholds: the data file and the built-in copy agree, the values obey the rules they were
chosen by (models/calibration/README.md), and unknown models are refused."""

from __future__ import annotations

import json

import pytest

from diarize.config import EmbeddingConfig
from diarize.errors import VoiceprintError
from diarize.voiceprints import calibration
from diarize.voiceprints.calibration import BUILTIN, THRESHOLDS_PATH, Calibration, load_calibration


def default_model_id() -> str:
    """The ``model_id`` of the default embedding backend (its class attribute: no weights are loaded)."""
    backend = EmbeddingConfig().backend
    if backend == "campplus":
        from diarize.embeddings.campplus import CampplusBackend as cls
    elif backend == "resemblyzer":
        from diarize.embeddings.resemblyzer import ResemblyzerBackend as cls
    else:
        from diarize.embeddings.ecapa import EcapaBackend as cls
    return cls.model_id


def test_builtin_copy_matches_models_thresholds_json():
    table = json.loads(THRESHOLDS_PATH.read_text())["models"]
    assert set(table) == set(BUILTIN)
    for model, values in BUILTIN.items():
        assert {k: table[model][k] for k in values} == values
        assert (THRESHOLDS_PATH.parent / table[model]["measured"]).is_file()


def test_the_default_model_is_calibrated():
    cal = load_calibration(default_model_id())
    assert cal.model_id == default_model_id()


def test_resemblyzer_calibration_is_ordered_sensibly():
    cal = load_calibration("resemblyzer-ge2e")
    assert 0.5 < cal.consistency < cal.identify < 1.0
    assert cal.confidence(cal.identify + 0.1) > 0.95 > 0.05 > cal.confidence(cal.identify - 0.2)
    assert cal.confidence(0.7) < cal.confidence(0.8) < cal.confidence(0.9)


def test_campplus_calibration_loads():
    cal = load_calibration("campplus-zh-en-common")
    assert isinstance(cal, Calibration) and cal.model_id == "campplus-zh-en-common"
    assert cal.to_dict() == {"model_id": "campplus-zh-en-common", **BUILTIN["campplus-zh-en-common"]}
    # CAM++ scores different speakers near 0 (GE2E near 0.5): its thresholds are far lower than GE2E's
    assert cal.identify < load_calibration("resemblyzer-ge2e").identify - 0.2
    assert cal.identify < cal.link <= cal.link_member  # as measured (link_member is a same-voice quantile)


@pytest.mark.parametrize("model_id", sorted(BUILTIN))
def test_thresholds_are_consistent(model_id):
    """What the rules imply: linking (a lower false-accept rate per comparison) is at least as strict as
    identification; one voice's halves are told apart only below the bar a sample of that voice must
    reach; a named match never counts against its name (the confidence rule)."""
    cal = load_calibration(model_id)
    for name in ("identify", "link", "link_member", "consistency", "separation"):
        assert -1.0 < getattr(cal, name) < 1.0, name
    assert cal.identify <= cal.link
    assert cal.separation < cal.consistency
    assert cal.confidence_a > 0
    assert cal.confidence(cal.identify) >= 0.5
    assert cal.confidence(cal.identify + 0.1) > 0.9 and cal.confidence(cal.identify - 0.2) < 0.05


@pytest.mark.parametrize("model_id", sorted(BUILTIN))
def test_measured_error_rates_meet_the_rules(model_id):
    table = json.loads(THRESHOLDS_PATH.read_text())["models"]
    measured = json.loads((THRESHOLDS_PATH.parent / table[model_id]["measured"]).read_text())
    assert measured["model_id"] == model_id
    assert measured["thresholds"] == BUILTIN[model_id]
    rates = measured["at_threshold"]
    assert rates["identify_impostor_accept"] <= 0.002
    assert rates["link_impostor_accept"] <= 0.0005
    assert rates["member_genuine_pass"] >= 0.98
    assert rates.get("consistency_genuine_pass", 1.0) >= 0.99
    assert rates["separation_one_voice_split"] <= 0.015


def test_campplus_was_calibrated_on_readers_the_benchmarks_do_not_score():
    measured = json.loads((THRESHOLDS_PATH.parent / "calibration" / "campplus-zh-en-common.json").read_text())
    assert "calibration half" in measured["data"] and "test-other reader" in measured["data"]


def test_the_reader_split_is_fixed_and_disjoint(data_dir):
    from benchmarks.voiceprints import half_of

    libri = data_dir / "librispeech"
    halves: dict[str, set[str]] = {"calibration": set(), "scoring": set()}
    for f in sorted(libri.glob("test-other/*/*.flac")) + sorted(libri.glob("train-clean-100/*.flac")):
        halves[half_of(f.relative_to(libri))].add(f.name.split("-")[0])
    assert not halves["calibration"] & halves["scoring"]
    assert {r for r in halves["scoring"] if (libri / "test-other" / r).is_dir()} == \
        {p.name for p in (libri / "test-other").iterdir() if p.is_dir()}
    assert all(int(r) % 2 == 0 for r in halves["calibration"])
    assert len(halves["calibration"]) == 103 and len(halves["scoring"]) == 5 + 97


def test_unknown_model_is_refused(monkeypatch, tmp_path):
    with pytest.raises(VoiceprintError, match="no calibrated thresholds"):
        load_calibration("ecapa-unmeasured")
    monkeypatch.setattr(calibration, "THRESHOLDS_PATH", tmp_path / "absent.json")
    model = default_model_id()
    assert load_calibration(model).identify == BUILTIN[model]["identify"]
