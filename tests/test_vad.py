import numpy as np
import pytest

from diarize.config import PostprocessConfig, VADConfig
from pyannote.core import Annotation, Segment
from pyannote.metrics.detection import DetectionErrorRate

from diarize.postprocess import cut_pauses
from diarize.vad import (
    SileroVAD,
    fit_to_sound,
    frame_energies_db,
    interior_pauses,
    loudness_gain,
    refine_boundaries,
    regions_from_probabilities,
    speech_level_db,
)

from .speech import build_conversation, reader_utterances, speech_spans

FRAME = 0.032


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


def probabilities(spans: list[tuple[float, float, float]], duration: float) -> np.ndarray:
    """Frame probabilities: ``value`` inside each (start, end, value) span, 0 elsewhere."""
    probs = np.zeros(int(duration / FRAME))
    for start, end, value in spans:
        probs[int(start / FRAME) : int(end / FRAME)] = value
    return probs


def test_hysteresis_bridging_and_minimum_duration():
    config = VADConfig(threshold=0.5, neg_threshold=0.3, min_speech=0.25, min_silence=0.3, speech_pad=0.0)
    probs = probabilities([(1.0, 2.0, 0.9), (2.0, 2.5, 0.4), (2.6, 3.0, 0.9), (5.0, 5.1, 0.9), (7.0, 8.0, 0.9)], 10)
    regions = regions_from_probabilities(probs, FRAME, 10.0, config)
    # 0.4 stays above neg_threshold (hysteresis), the 0.1 s gap is bridged, the 0.1 s burst dropped.
    assert len(regions) == 2
    assert regions[0] == pytest.approx([1.0, 3.0], abs=FRAME)
    assert regions[1] == pytest.approx([7.0, 8.0], abs=FRAME)


def test_padding_keeps_regions_disjoint_and_inside_audio():
    config = VADConfig(threshold=0.5, min_silence=0.0, min_speech=0.0, speech_pad=0.2)
    probs = probabilities([(0.0, 1.0, 0.9), (1.2, 2.0, 0.9)], 2.0)
    regions = regions_from_probabilities(probs, FRAME, 2.0, config)
    assert regions[0, 0] == 0.0 and regions[-1, 1] <= 2.0
    assert np.all(regions[1:, 0] >= regions[:-1, 1])


def test_loudness_gain_amplifies_quiet_audio_only():
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(16000 * 5) * 0.003).astype(np.float32)
    assert 10 < loudness_gain(quiet, target_rms_dbfs=-23.0) < 30
    assert loudness_gain((rng.standard_normal(16000) * 0.3).astype(np.float32)) == 1.0
    assert loudness_gain(np.zeros(16000, np.float32)) == 1.0
    assert loudness_gain(np.full(16000, 1e-6, np.float32)) == pytest.approx(100.0)  # capped at +40 dB


def test_speech_level_is_the_loud_end_of_the_frames_inside_the_regions():
    t = np.arange(16000 * 4) / 16000
    signal = np.zeros_like(t, dtype=np.float32)
    signal[16000:32000] = 0.5 * np.sin(2 * np.pi * 200 * t[16000:32000])  # mean square 0.125: -9.03 dB
    signal[48000:] = 0.05 * np.sin(2 * np.pi * 200 * t[48000:])  # -29 dB, outside the regions given
    energies = frame_energies_db(signal)
    assert speech_level_db(np.array([[1.0, 2.0]]), energies) == pytest.approx(-9.03, abs=0.05)
    assert speech_level_db(np.array([[1.0, 2.0], [3.0, 4.0]]), energies) == pytest.approx(-9.03, abs=0.05)
    assert speech_level_db(np.array([[3.0, 4.0]]), energies) == pytest.approx(-29.03, abs=0.05)
    assert speech_level_db(np.zeros((0, 2)), energies) is None


def test_silence_and_noise_have_no_speech(vad):
    rng = np.random.default_rng(1)
    assert len(vad(np.zeros(16000 * 10, dtype=np.float32))) == 0
    noise = (rng.standard_normal(16000 * 10) * 0.01).astype(np.float32)
    regions = vad(noise)
    assert (regions[:, 1] - regions[:, 0]).sum() < 0.5


def test_gain_is_applied_without_copying_the_signal(vad):
    rng = np.random.default_rng(3)
    signal = (rng.standard_normal(16000 * 3 + 100) * 0.01).astype(np.float32)
    scaled = np.clip(signal * 20, -1, 1)
    assert np.allclose(vad.speech_probabilities(signal, gain=20.0), vad.speech_probabilities(scaled), atol=1e-5)


def test_batched_streams_match_sequential(vad):
    rng = np.random.default_rng(2)
    signal = (rng.standard_normal(16000 * 70) * 0.05).astype(np.float32)
    streamed = SileroVAD(stream_seconds=20.0).speech_probabilities(signal)
    sequential = SileroVAD(stream_seconds=1000.0).speech_probabilities(signal)
    assert streamed.shape == sequential.shape
    assert np.abs(streamed - sequential).max() < 0.05


def test_finds_real_speech_between_silences(vad, data_dir):
    speech = reader_utterances(data_dir, "1688", 1)[0]
    signal = np.concatenate([np.zeros(32000, np.float32), speech, np.zeros(48000, np.float32)])
    regions = vad(signal)
    start, end = 2.0, 2.0 + len(speech) / 16000
    covered = sum(max(0.0, min(e, end) - max(s, start)) for s, e in regions)
    outside = sum(e - s for s, e in regions) - covered
    assert covered > 0.6 * (end - start)  # read speech has real pauses inside
    assert outside < 0.5


def test_quiet_recording_keeps_its_speech(vad, data_dir):
    speech = reader_utterances(data_dir, "2033", 1)[0]
    pad = np.zeros(16000, np.float32)

    def found(level: float) -> float:
        scaled = (speech * (level / np.sqrt(np.mean(speech**2)))).astype(np.float32)
        return sum(e - s for s, e in vad(np.concatenate([pad, scaled, pad])))

    loud, quiet = found(0.1), found(0.003)  # -20 and -50 dBFS RMS
    assert quiet > 0.7 * len(speech) / 16000
    assert abs(quiet - loud) < 0.1 * loud


def bursts(spans: list[tuple[float, float]], duration: float, seed: int = 4) -> np.ndarray:
    """Loud noise inside each (start, end) span over a faint noise floor, 16 kHz."""
    rng = np.random.default_rng(seed)
    signal = (rng.standard_normal(int(duration * 16000)) * 1e-4).astype(np.float32)
    for start, end in spans:
        a, b = int(start * 16000), int(end * 16000)
        signal[a:b] = (rng.standard_normal(b - a) * 0.1).astype(np.float32)
    return signal


def refined(regions: list[list[float]], signal: np.ndarray, **config) -> np.ndarray:
    settings = VADConfig(min_speech=0.1, **config)
    return refine_boundaries(np.array(regions, dtype=np.float64), frame_energies_db(signal), len(signal) / 16000,
                             settings)


def test_refined_edges_grow_and_shrink_to_the_sound():
    signal = bursts([(1.0, 3.0)], 5.0)
    assert refined([[1.2, 2.8]], signal) == pytest.approx(np.array([[1.0, 3.0]]), abs=0.03)  # late start, early end
    assert refined([[0.7, 3.3]], signal) == pytest.approx(np.array([[1.0, 3.0]]), abs=0.03)  # starts and ends in silence
    assert refined([[1.8, 2.2]], signal, refine_reach=0.3) == pytest.approx(np.array([[1.5, 2.5]]), abs=0.03)  # reach caps
    beside = refined([[1.2, 2.8], [3.5, 4.5]], signal)  # nothing audible near the second: left as it was
    assert beside == pytest.approx(np.array([[1.0, 3.0], [3.5, 4.5]]), abs=0.03)
    assert refined([[3.5, 4.5]], signal[32000:]) == pytest.approx(np.array([[3.5, 4.5]]))  # no speech level at all


def test_refinement_bridges_short_dips_only_and_keeps_regions_disjoint():
    short_dip, long_dip = bursts([(1.0, 2.0), (2.1, 3.0)], 5.0), bursts([(1.0, 2.0), (2.5, 3.0)], 5.0)
    assert refined([[1.2, 1.8]], short_dip, refine_reach=2.0)[0, 1] == pytest.approx(3.0, abs=0.03)
    assert refined([[1.2, 1.8]], long_dip, refine_reach=2.0)[0, 1] == pytest.approx(2.0, abs=0.03)
    both = refined([[1.2, 1.8], [2.2, 2.8]], short_dip, refine_reach=2.0)  # grown into each other: one region
    assert both == pytest.approx(np.array([[1.0, 3.0]]), abs=0.03)


def test_interior_pauses_are_long_quiet_stretches_inside_regions():
    signal = bursts([(1.0, 2.0), (2.3, 3.0), (3.8, 5.0), (6.0, 7.0)], 8.0)
    regions = np.array([[1.0, 5.0], [6.0, 7.0]])
    pauses = interior_pauses(regions, frame_energies_db(signal), min_pause=0.5)
    assert pauses == pytest.approx(np.array([[3.0, 3.8]]), abs=0.03)  # the 0.3 s pause and the gap between regions are not
    assert len(interior_pauses(regions, frame_energies_db(signal), min_pause=0.9)) == 0
    assert interior_pauses(regions, frame_energies_db(signal), min_pause=0.25) == pytest.approx(
        np.array([[2.0, 2.3], [3.0, 3.8]]), abs=0.03)
    assert len(interior_pauses(regions, frame_energies_db(signal[: 16000 // 2]), min_pause=0.5)) == 0  # no speech


def test_interior_pauses_follow_the_local_noise_floor():
    # A pause in a noisy stretch sits 25 dB above the quiet stretch's floor: judged against the file's
    # floor it is sound, against its neighbourhood it is a pause.
    signal = bursts([(1.0, 2.0), (2.8, 4.0), (6.0, 7.0), (7.8, 9.0)], 10.0)
    rng = np.random.default_rng(7)
    signal[int(5.5 * 16000):] += (rng.standard_normal(int(4.5 * 16000)) * 2e-3).astype(np.float32)
    regions = np.array([[1.0, 4.0], [6.0, 9.0]])
    energies = frame_energies_db(signal)
    pauses = interior_pauses(regions, energies, min_pause=0.5)
    assert pauses == pytest.approx(np.array([[2.0, 2.8], [7.0, 7.8]]), abs=0.03)
    whole_file = interior_pauses(regions, energies, min_pause=0.5, floor_window=12.0)
    assert len(whole_file) == 1  # one floor for the file
    assert np.array_equal(interior_pauses(regions, energies, min_pause=0.5, floor_window=1e6), whole_file)


def test_fit_to_sound_trims_quiet_edges_and_cuts_long_pauses_only():
    signal = bursts([(1.0, 2.0), (2.3, 3.0), (3.8, 5.0), (6.5, 7.0)], 8.0)
    segments = np.array([[0.6, 5.4], [6.0, 6.3], [6.4, 7.5]])
    pieces = fit_to_sound(segments, frame_energies_db(signal), min_pause=0.5)
    assert [p[0] for p in pieces] == [0, 0, 1, 2]  # which segment each piece comes from
    assert np.array([p[1:] for p in pieces]) == pytest.approx(
        np.array([[1.0, 3.0], [3.8, 5.0], [6.0, 6.3], [6.5, 7.0]]), abs=0.03)  # a silent segment stays whole
    shorter = fit_to_sound(segments[:1], frame_energies_db(signal), min_pause=0.25)
    assert np.array([p[1:] for p in shorter]) == pytest.approx(np.array([[1.0, 2.0], [2.3, 3.0], [3.8, 5.0]]), abs=0.03)
    never_beyond = fit_to_sound(np.array([[1.5, 4.0]]), frame_energies_db(signal), min_pause=0.5)
    assert np.array([p[1:] for p in never_beyond]) == pytest.approx(np.array([[1.5, 3.0], [3.8, 4.0]]), abs=0.03)


@pytest.mark.parametrize(("reader", "count"), [("2609", 3), ("367", 6)])
def test_interior_pauses_remove_false_alarm_in_real_read_speech(vad, data_dir, reader, count):
    # Utterances of a reader who pauses mid-sentence; the reference splits speech at pauses of 0.5 s
    # or more. Silero keeps some of those pauses inside its regions: cutting them with the default
    # settings must remove a good part of that false alarm without missing any speech.
    pad = np.zeros(8000, np.float32)
    signal, reference, cursor = [pad], Annotation(), len(pad) / 16000
    for speech in reader_utterances(data_dir, reader, count):
        for start, end in speech_spans(speech):
            reference[Segment(cursor + start, cursor + end)] = "speech"
        signal += [speech, pad]
        cursor += (len(speech) + len(pad)) / 16000
    signal = np.concatenate(signal)
    energies = frame_energies_db(signal)
    regions = vad(signal, energies)
    settings = PostprocessConfig()
    pauses = interior_pauses(regions, energies, settings.min_pause, settings.pause_floor_window, settings.pause_level,
                             settings.pause_depth_db)
    kept = np.array([[start, end] for _, start, end in cut_pauses([[0, a, b] for a, b in regions], pauses, 0.01)])

    def errors(spans: np.ndarray) -> dict:
        hypothesis = Annotation()
        for start, end in spans:
            hypothesis[Segment(start, end)] = "speech"
        return DetectionErrorRate()(reference, hypothesis, detailed=True)

    before, after = errors(regions), errors(kept)
    assert before["false alarm"] > 0.4  # the VAD alone does bridge real pauses here
    assert after["false alarm"] < 0.6 * before["false alarm"]
    assert after["miss"] < before["miss"] + 0.05


def test_frame_energies_in_blocks_match_one_pass():
    signal = bursts([(0.5, 1.5)], 3.0)
    assert np.allclose(frame_energies_db(signal, block_hops=7), frame_energies_db(signal))
    assert len(frame_energies_db(signal)) == len(signal) // 160 - 1


def test_refined_boundaries_detect_real_speech_better(data_dir):
    turns = [(r, u) for r in ("1688", "2033") for u in reader_utterances(data_dir, r, 2)]
    audio, reference = build_conversation(turns, seed=5)
    speech = Annotation()
    for segment in reference.get_timeline().support():
        speech[segment] = "speech"

    def detection_error(refine: bool) -> float:
        hypothesis = Annotation()
        for start, end in SileroVAD(VADConfig(refine_boundaries=refine))(audio):
            hypothesis[Segment(start, end)] = "speech"
        return DetectionErrorRate(collar=0.0)(speech, hypothesis)

    without, with_refinement = detection_error(False), detection_error(True)
    assert with_refinement < 0.8 * without, (without, with_refinement)
