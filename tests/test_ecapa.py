"""The ECAPA backend against checkpoints laid out like ``speechbrain/spkrec-ecapa-voxceleb``.

The published weights cannot be downloaded here, so each test writes the hub repository's files
itself (hyperparams.yaml of the model card's structure, random-init checkpoints saved with
torch.save) and loads them through :class:`EcapaBackend` from a local directory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip(
    "speechbrain.inference.speaker",
    reason="speechbrain is not installed (scripts/install-ecapa.sh installs the ecapa extra)",
)

from speechbrain.dataio.encoder import CategoricalEncoder  # noqa: E402
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN, Classifier  # noqa: E402

from diarize.embeddings.ecapa import EcapaBackend  # noqa: E402
from diarize.errors import ModelError  # noqa: E402
from diarize.models import sha256_file  # noqa: E402

SR = 16000

# The published card's hyperparams.yaml, with its architecture sizes as placeholders.
HYPERPARAMS = """\
# Model: ECAPA for speaker embeddings (layout of speechbrain/spkrec-ecapa-voxceleb)

n_mels: 80

pretrained_path: speechbrain/spkrec-ecapa-voxceleb

out_n_neurons: {out_neurons}

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: {attention}
    lin_neurons: 192

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 192
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

CARD = {"channels": [1024, 1024, 1024, 1024, 3072], "attention": 128}
SMALL = {"channels": [64, 64, 64, 64, 192], "attention": 16}


def write_model_dir(path, channels, attention, out_neurons=4, seed=0):
    """Write a hub-layout model directory with random weights; return the saved embedding state_dict."""
    torch.manual_seed(seed)
    embedding = ECAPA_TDNN(
        80, channels=channels, kernel_sizes=[5, 3, 3, 3, 1], dilations=[1, 2, 3, 4, 1],
        attention_channels=attention, lin_neurons=192,
    )
    for name, buffer in embedding.named_buffers():  # trained-looking BatchNorm statistics, not the defaults
        if name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    classifier = Classifier(input_size=192, out_neurons=out_neurons)
    path.mkdir(parents=True, exist_ok=True)
    (path / "hyperparams.yaml").write_text(
        HYPERPARAMS.format(channels=channels, attention=attention, out_neurons=out_neurons)
    )
    state = embedding.state_dict()
    torch.save(state, path / "embedding_model.ckpt")
    torch.save(classifier.state_dict(), path / "classifier.ckpt")
    torch.save(
        {"count": 10, "glob_mean": torch.randn(192), "glob_std": torch.ones(192)},
        path / "mean_var_norm_emb.ckpt",
    )
    labels = CategoricalEncoder()
    labels.update_from_iterable([f"id{i:05d}" for i in range(out_neurons)])
    labels.save(path / "label_encoder.txt")
    return state


def speech_like(seconds, f0, seed):
    """A harmonic tone with vibrato plus a little noise: deterministic test audio."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.05 * rng.standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("ecapa-small")
    state = write_model_dir(path, **SMALL)
    return path, state, EcapaBackend(source=path, batch_size=4)


def test_output_shape_and_unit_norm(small_model):
    _, _, backend = small_model
    x = speech_like(4.0, 120, seed=1)
    starts = np.array([0, 8000, 16000, 24000, 40000])
    ends = np.array([24000, 32000, 40000, 48000, 64000])
    v = backend.embed_windows(x, starts, ends)
    assert v.shape == (5, 192) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert backend.dimension == 192 and backend.model_id == "speechbrain/spkrec-ecapa-voxceleb"
    np.testing.assert_allclose(backend.embed_windows(x, starts, ends, gain=0.25),
                               backend.embed_windows(x * np.float32(0.25), starts, ends), atol=1e-5)


def test_deterministic_and_identical_windows_agree(small_model):
    _, _, backend = small_model
    x = speech_like(1.5, 140, seed=2)
    signal = np.concatenate([x, x])  # two identical 1.5 s windows
    starts, ends = np.array([0, len(x)]), np.array([len(x), 2 * len(x)])
    first = backend.embed_windows(signal, starts, ends)
    second = backend.embed_windows(signal, starts, ends)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first[0], first[1], atol=1e-6)


def test_different_signals_differ(small_model):
    _, _, backend = small_model
    low, high = speech_like(1.5, 100, seed=3), speech_like(1.5, 260, seed=4)
    signal = np.concatenate([low, high])
    v = backend.embed_windows(signal, np.array([0, len(low)]), np.array([len(low), len(signal)]))
    assert float(v[0] @ v[1]) < 0.99


def test_a_window_does_not_depend_on_the_other_windows_of_the_call(small_model):
    _, _, backend = small_model
    x = speech_like(3.0, 180, seed=5)
    alone = backend.embed_windows(x, np.array([0]), np.array([16000]))
    with_longer = backend.embed_windows(x, np.array([0, 0]), np.array([16000, 48000]))
    np.testing.assert_array_equal(alone[0], with_longer[0])
    assert float(with_longer[0] @ with_longer[1]) < 0.9999
    padded_by_80 = backend.embed_windows(x, np.array([0, 8000]), np.array([16000, 24080]))
    assert float(alone[0] @ padded_by_80[0]) > 0.999


def test_short_and_empty_inputs(small_model):
    _, _, backend = small_model
    x = speech_like(1.0, 150, seed=6)
    assert backend.embed_windows(x, np.array([], dtype=int), np.array([], dtype=int)).shape == (0, 192)
    tiny = backend.embed_windows(x, np.array([0]), np.array([400]))
    assert tiny.shape == (1, 192) and np.isfinite(tiny).all()
    with pytest.raises(ValueError):
        backend.embed_windows(x, np.array([100]), np.array([100]))
    whole = backend.embed(speech_like(3.0, 150, seed=6))
    assert whole.shape == (192,) and abs(np.linalg.norm(whole) - 1) < 1e-5


def test_loaded_weights_are_the_saved_ones(small_model):
    path, state, backend = small_model
    loaded = backend.classifier.mods.embedding_model.state_dict()
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=0, msg=name)
    assert backend.checkpoint.resolve() == (path / "embedding_model.ckpt").resolve()


def test_different_checkpoints_give_different_vectors(small_model, tmp_path):
    _, _, backend = small_model
    write_model_dir(tmp_path, **SMALL, seed=1)
    other = EcapaBackend(source=tmp_path)
    x = speech_like(1.5, 150, seed=7)
    a = backend.embed_windows(x, np.array([0]), np.array([len(x)]))
    b = other.embed_windows(x, np.array([0]), np.array([len(x)]))
    assert float(a[0] @ b[0]) < 0.99


def test_card_architecture_loads(tmp_path):
    state = write_model_dir(tmp_path, **CARD)
    backend = EcapaBackend(source=tmp_path, sha256=sha256_file(tmp_path / "embedding_model.ckpt"))
    loaded = backend.classifier.mods.embedding_model.state_dict()
    assert sum(t.numel() for t in state.values() if t.is_floating_point()) > 20_000_000
    for name in ("blocks.0.conv.conv.weight", "mfa.conv.conv.weight", "fc.conv.weight", "asp_bn.norm.running_var"):
        torch.testing.assert_close(loaded[name], state[name], rtol=0, atol=0)
    x = speech_like(1.0, 150, seed=8)
    v = backend.embed_windows(x, np.array([0, 4000]), np.array([16000, 16000]))
    assert v.shape == (2, 192)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_missing_directory_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        EcapaBackend(source=tmp_path / "nowhere")


def test_directory_without_hyperparams_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="hyperparams.yaml"):
        EcapaBackend(source=tmp_path)


def test_missing_checkpoint_raises_model_error(tmp_path):
    write_model_dir(tmp_path, **SMALL)
    (tmp_path / "embedding_model.ckpt").unlink()
    with pytest.raises(ModelError, match="cannot load ECAPA model"):
        EcapaBackend(source=tmp_path)


def test_checkpoint_of_another_architecture_raises_model_error(tmp_path):
    write_model_dir(tmp_path, **SMALL)
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "embedding_model.ckpt")
    with pytest.raises(ModelError, match="does not match"):
        EcapaBackend(source=tmp_path)


def test_broken_hyperparams_raises_model_error(tmp_path):
    write_model_dir(tmp_path, **SMALL)
    (tmp_path / "hyperparams.yaml").write_text("embedding_model: !new:speechbrain.no.such.Module\n")
    with pytest.raises(ModelError, match="cannot load ECAPA model"):
        EcapaBackend(source=tmp_path)


def test_wrong_sha256_raises_model_error(tmp_path):
    write_model_dir(tmp_path, **SMALL)
    with pytest.raises(ModelError, match="checksum mismatch"):
        EcapaBackend(source=tmp_path, sha256="0" * 64)


def test_unreachable_hub_id_raises_model_error():
    with pytest.raises(ModelError, match="cannot load ECAPA model from 'diarize-tests/no-such-model'"):
        EcapaBackend(source="diarize-tests/no-such-model", allow_network=False)
