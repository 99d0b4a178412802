"""Checks of the benchmark parts that could go wrong silently: metric wiring, EER, data determinism, references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment, Timeline

from benchmarks import data_root
from benchmarks.metrics import Scorer, eer, min_dcf

needs_data = pytest.mark.skipif(
    not (data_root() / "librispeech").is_dir(),
    reason=f"benchmark speech data not found at {data_root()} (set DIARIZE_DATA)",
)


def _ann(uri: str, *tracks: tuple[float, float, str]) -> Annotation:
    ann = Annotation(uri=uri)
    for i, (a, b, label) in enumerate(tracks):
        ann[Segment(a, b), i] = label
    return ann


def test_der_wiring_by_hand() -> None:
    # Reference: A 0-10, B 8-20 (2 s overlap). Hypothesis: X 0-11, Y 11-20 (maps X->A, Y->B).
    ref = _ann("f", (0, 10, "A"), (8, 20, "B"))
    hyp = _ann("f", (0, 11, "X"), (11, 20, "Y"))
    uem = Timeline([Segment(0, 20)], uri="f")
    scorer = Scorer()
    row = scorer.add(ref, hyp, uem, true_speakers=2, wall_s=1.0, duration=20.0)
    # Strict: total 22 s of reference speech; B missed in 8-10 (2 s); 10-11 is B labelled X (1 s confusion).
    assert row["der"] == pytest.approx(3 / 22)
    assert row["miss"] == pytest.approx(2 / 22)
    assert row["confusion"] == pytest.approx(1 / 22)
    assert row["false_alarm"] == pytest.approx(0.0)
    # Forgiving: +-0.25 s around 0, 8, 10, 20 and the 8-10 overlap are not scored: 7.5 + 9.5 = 17 s left,
    # of which 10.25-11 (0.75 s) is confused.
    assert row["der_forgiving"] == pytest.approx(0.75 / 17)
    # JER: A/X: fa 1, union 11; B/Y: miss 3, union 12.
    assert row["jer"] == pytest.approx((1 / 11 + 3 / 12) / 2)
    assert row["pred_speakers"] == 2 and row["rtf"] == pytest.approx(0.05)


def test_aggregate_der_sums_components() -> None:
    scorer = Scorer()
    uem = Timeline([Segment(0, 20)], uri="a")
    scorer.add(_ann("a", (0, 10, "A"), (10, 20, "B")), _ann("a", (0, 20, "X")), uem, 2, 1.0, 20.0)  # 10/20
    uem_b = Timeline([Segment(0, 20)], uri="b")
    scorer.add(_ann("b", (0, 20, "A")), _ann("b", (0, 20, "X")), uem_b, 1, 1.0, 20.0)  # 0/20
    summary = scorer.summary()
    assert summary["der"] == pytest.approx(10 / 40)  # not the mean of per-file rates (0.25 either way here)
    assert summary["per_count"]["2"]["der"] == pytest.approx(0.5)
    assert summary["count_exact"] == pytest.approx(0.5) and summary["count_mae"] == pytest.approx(0.5)


def test_eer_separable_is_zero_and_identical_is_half() -> None:
    rng = np.random.default_rng(0)
    assert eer(rng.uniform(1, 2, 500), rng.uniform(-1, 0, 500)) == pytest.approx(0.0)
    assert min_dcf(rng.uniform(1, 2, 500), rng.uniform(-1, 0, 500), 0.01) == pytest.approx(0.0)
    same = eer(rng.normal(0, 1, 20000), rng.normal(0, 1, 20000))
    assert same == pytest.approx(0.5, abs=0.02)
    assert eer(rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)) == pytest.approx(0.1587, abs=0.01)


def test_baseline_frame_majority() -> None:
    pytest.importorskip("spectralcluster")
    from benchmarks.baselines import frame_labels

    frames = frame_labels(800, [(0, 480), (160, 800), (320, 800)], np.array([0, 1, 1]))
    assert frames.tolist() == [0, 0, 1, 1, 1]  # frame 1 ties 0/1 -> first label; frames 2-4 are 2:1 or 2:0 for 1


@needs_data
def test_generation_is_deterministic(tmp_path, monkeypatch) -> None:
    from benchmarks import datasets

    metas = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        monkeypatch.setenv("DIARIZE_BENCH_CACHE", str(tmp_path / name))
        item = datasets.sim_items("heldout", 2, seed=seed)[1]
        meta = json.loads(item.audio.with_suffix(".json").read_text())
        metas.append((meta["sha256"], item.audio.with_suffix(".rttm").read_text()))
    assert metas[0] == metas[1]
    assert metas[0][0] != metas[2][0]


@needs_data
def test_simulated_reference_is_exact(tmp_path, monkeypatch) -> None:
    from benchmarks import datasets
    from benchmarks.speech import SR

    monkeypatch.setenv("DIARIZE_BENCH_CACHE", str(tmp_path))
    item = datasets.sim_items("tune", 3)[2]  # three speakers, no added noise
    meta = json.loads(item.audio.with_suffix(".json").read_text())
    assert not item.info["noisy"] and item.num_speakers == 3
    # Every placed turn is trimmed (its first speech stretch starts it, its last ends it), and the reference is
    # exactly those stretches, shifted to where the turn was placed.
    stretches = [(onset + a, onset + b, spk) for spk, _, start, end, onset, *_, spans in meta["turns"]
                 for a, b in spans]
    assert all(spans[0][0] == 0 and spans[-1][1] == end - start for _, _, start, end, *_, spans in meta["turns"])
    ref_tracks = sorted((seg.start, seg.end, label) for seg, _, label in item.reference.itertracks(yield_label=True))
    expected = sorted((a / SR, b / SR, spk) for a, b, spk in stretches)
    assert [t[2] for t in ref_tracks] == [t[2] for t in expected]
    assert np.allclose([t[:2] for t in ref_tracks], [t[:2] for t in expected], atol=1e-3)  # RTTM keeps ms
    placed = sum(b - a for a, b, _ in stretches) / SR
    assert sum(seg.duration for seg, _ in item.reference.itertracks()) == pytest.approx(placed, abs=0.05)
    assert placed == pytest.approx(item.info["speech_seconds"], abs=1e-3)
    assert 0.05 <= item.info["overlap_turn_fraction"] <= 0.15
    # Between turns there is only the room-tone floor (50 dB under speech); pauses inside turns are quiet too.
    x, sr = sf.read(item.audio, dtype="float32")
    speech, turns = np.zeros(len(x), dtype=bool), np.zeros(len(x), dtype=bool)
    for seg in item.reference.get_timeline().support():
        speech[int(seg.start * sr) : int(seg.end * sr)] = True
    for _, _, start, end, onset, *_ in meta["turns"]:
        turns[onset : onset + end - start] = True
    level = lambda v: 10 * np.log10(np.mean(v.astype(np.float64) ** 2))  # noqa: E731
    assert level(x[speech]) - level(x[~turns]) > 45
    assert level(x[speech]) - level(x[~speech]) > 30


@needs_data
def test_splits_have_disjoint_readers() -> None:
    from benchmarks.datasets import corpus

    tune, held = corpus().split(1234, "tune"), corpus().split(1234, "heldout")
    assert not set(tune.rich + tune.single) & set(held.rich + held.single)
    assert (len(tune.rich), len(held.rich), len(tune.single), len(held.single)) == (3, 2, 140, 60)
