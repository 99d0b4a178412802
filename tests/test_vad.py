import numpy as np
import pytest

from diarize.config import VADConfig
from diarize.vad import SileroVAD, loudness_gain, regions_from_probabilities

from .speech import reader_utterances

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
