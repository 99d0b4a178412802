import librosa
import numpy as np
import pytest
import torch

from diarize.config import EmbeddingConfig
from diarize.embeddings import level_gain, load_backend
from diarize.errors import ConfigError, ModelError

from .speech import reader_utterances


@pytest.fixture(scope="module")
def backend():
    return load_backend(EmbeddingConfig(backend="resemblyzer", precision="float32"))


def test_mel_in_blocks_equals_one_shot_librosa(backend):
    x = np.random.default_rng(0).standard_normal(16000 * 7 + 37).astype(np.float32) * 0.1
    blocks = backend.mel_frames(x, block_frames=100)
    whole = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=400, hop_length=160, n_mels=40, pad_mode="constant").T
    assert blocks.shape == whole.shape
    assert np.allclose(blocks, whole, atol=1e-6)


def test_windows_match_resemblyzer_reference_embedding(backend):
    from resemblyzer.audio import wav_to_mel_spectrogram

    x = np.random.default_rng(1).standard_normal(16000 * 6).astype(np.float32) * 0.1
    starts = np.array([16000, 40000]), np.array([16000 + 25600, 40000 + 25600])
    ours = backend.embed_windows(x, *starts)
    for vector, start in zip(ours, starts[0]):
        mel = wav_to_mel_spectrogram(x[start : start + 25600])[:160]
        with torch.no_grad():
            reference = backend.encoder(torch.from_numpy(mel[None])).numpy()[0]
        assert float(vector @ reference) > 0.99


def test_batches_of_mixed_lengths_give_unit_vectors_independent_of_batching(backend):
    x = np.random.default_rng(2).standard_normal(16000 * 10).astype(np.float32) * 0.1
    starts = np.array([0, 8000, 32000, 64000])
    ends = starts + np.array([24000, 6400, 24000, 12000])
    together = backend.embed_windows(x, starts, ends)
    alone = np.stack([backend.embed_windows(x, starts[i : i + 1], ends[i : i + 1])[0] for i in range(4)])
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-5)
    progress = []
    backend.embed_windows(x, starts, ends, progress=progress.append)
    assert progress[-1] == 1.0


def test_gain_scales_the_input_without_a_copy(backend, data_dir):
    speech = np.concatenate(reader_utterances(data_dir, "2033", 2))
    starts = np.arange(0, len(speech) - 24000, 16000)
    scaled = backend.embed_windows(speech * np.float32(0.1), starts, starts + 24000)
    assert np.allclose(backend.embed_windows(speech, starts, starts + 24000, gain=0.1), scaled, atol=1e-5)
    # GE2E's vectors depend on the input level, which is why the pipeline embeds at one level.
    as_recorded = backend.embed_windows(speech, starts, starts + 24000)
    assert np.median(np.sum(as_recorded * scaled, axis=1)) < 0.98


def test_level_gain_reaches_the_target_within_bounds():
    assert level_gain(-30.0, -18.0) == pytest.approx(10 ** (12 / 20))
    assert level_gain(-6.0, -18.0) == pytest.approx(10 ** (-12 / 20))
    assert level_gain(-90.0, -18.0) == pytest.approx(100.0)  # at most 40 dB
    assert level_gain(None, -18.0) == level_gain(-30.0, None) == 1.0


def test_same_reader_is_closer_than_another_reader(backend, data_dir):
    a1, a2 = reader_utterances(data_dir, "2033", 2)
    b1 = reader_utterances(data_dir, "3080", 1)[0]
    ea1, ea2, eb1 = (backend.embed(u) for u in (a1, a2, b1))
    assert ea1 @ ea2 > ea1 @ eb1 + 0.05


def test_bfloat16_embeddings_stay_within_a_hair_of_float32(backend, data_dir):
    speech = np.concatenate(reader_utterances(data_dir, "2033", 2))
    starts = np.arange(0, len(speech) - 24000, 8000)
    exact = backend.embed_windows(speech, starts, starts + 24000)
    fast = load_backend(EmbeddingConfig(backend="resemblyzer", precision="bfloat16"))
    assert fast.bfloat16 and not backend.bfloat16
    approx = fast.embed_windows(speech, starts, starts + 24000)
    agreement = np.sum(exact * approx, axis=1)
    assert agreement.min() > 0.97 and np.median(agreement) > 0.99
    assert not np.array_equal(exact, approx)  # it really ran in bfloat16


def test_auto_precision_follows_the_cpu():
    from diarize.embeddings.resemblyzer import native_bfloat16

    assert load_backend(EmbeddingConfig(backend="resemblyzer")).bfloat16 == native_bfloat16()


def test_bad_backend_configuration_is_a_typed_error(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ModelError, match="nope.pt"):
        load_backend(EmbeddingConfig(backend="resemblyzer", source=str(missing)))
    with pytest.raises(ConfigError):
        load_backend(EmbeddingConfig.model_construct(backend="word2vec"))
