"""The voiceprint CLI on real speech: enroll, speakers list/delete, identify (per tenant), and a refused sample."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from .speech import build_conversation, reader_utterances

pytest.importorskip("qdrant_edge", reason="qdrant-edge-py is not installed")

READER, OTHER = "2033", "3080"


def diarize_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diarize.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vpcli")
    a, b = reader_utterances(data_dir, READER, 4), reader_utterances(data_dir, OTHER, 2)
    paths = {}
    for i, utt in enumerate(a[:2]):
        paths[f"enroll{i}"] = folder / f"sarah{i}.wav"
        sf.write(paths[f"enroll{i}"], utt, 16000)
    audio, _ = build_conversation([("a", a[2]), ("b", b[0]), ("a", a[3]), ("b", b[1])])
    paths["talk"] = folder / "talk.wav"
    sf.write(paths["talk"], audio, 16000)
    paths["silence"] = folder / "silence.wav"
    sf.write(paths["silence"], np.zeros(16000 * 5, dtype=np.float32), 16000)
    paths["store"] = folder / "store"
    return paths


def test_enroll_list_identify_rename_delete(files):
    store = ["--data-dir", str(files["store"])]
    out = diarize_cli("enroll", "Sarah", str(files["enroll0"]), str(files["enroll1"]), "--role", "Agent",
                      "--metadata", '{"team": "support"}', *store)
    assert out.returncode == 0, out.stderr
    assert "Sarah" in out.stdout and "Agent" in out.stdout

    out = diarize_cli("speakers", "list", "--format", "json", *store)
    assert out.returncode == 0, out.stderr
    [sarah] = json.loads(out.stdout)
    assert sarah["name"] == "Sarah" and sarah["role"] == "Agent" and sarah["n_samples"] == 2
    assert sarah["metadata"] == {"team": "support"}

    out = diarize_cli("identify", str(files["talk"]), *store)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = sorted((m["name"] or "") for m in data["matches"])
    assert names == ["", "Sarah"], data["matches"]
    labels = {s["speaker"] for s in data["speakers"]}
    assert "Sarah" in labels and len(labels) == 2

    out = diarize_cli("run", str(files["talk"]), "--identify", "--quiet", *store)
    assert out.returncode == 0, out.stderr
    assert "Sarah" in {s["speaker"] for s in json.loads(out.stdout)["speakers"]}

    out = diarize_cli("identify", str(files["talk"]), "--tenant", "other", *store)
    assert out.returncode == 0, out.stderr
    assert all(m["name"] is None for m in json.loads(out.stdout)["matches"])
    out = diarize_cli("speakers", "list", "--format", "json", "--tenant", "other", *store)
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stderr

    out = diarize_cli("speakers", "rename", "Sarah", "Sara", *store)
    assert out.returncode == 0, out.stderr
    out = diarize_cli("speakers", "delete", "Sarah", *store)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    out = diarize_cli("speakers", "delete", "Sara", *store)
    assert out.returncode == 0, out.stderr
    out = diarize_cli("speakers", "list", "--format", "json", *store)
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stderr

    out = diarize_cli("enroll", "Nobody", str(files["silence"]), *store)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error:") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
