"""Every Python block of README.md and service/README.md runs as written, each as a script of its own, in a folder
holding the files it names (real speech from the shared data)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .speech import build_conversation, reader_utterances

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "service" / "README.md"]


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for readme in READMES:
        for i, code in enumerate(re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)):
            blocks.append((f"{readme.relative_to(ROOT)}#{i + 1}", code))
    return blocks


@pytest.fixture(scope="module")
def folder(data_dir, tmp_path_factory) -> Path:
    """The files the README's examples name: a meeting, a two-channel call with its Whisper transcript, an
    agent's enrollment samples and a clip of her, and an archive folder."""
    here = tmp_path_factory.mktemp("readme")
    (here / "meeting.wav").symlink_to(data_dir / "ami-excerpts" / "trn09.wav")
    (here / "archive").mkdir()
    for reader in ("2033", "3080"):
        source = sorted((data_dir / "librispeech" / "test-other" / reader).glob("*.flac"))[0]
        (here / "archive" / source.name).symlink_to(source)
    sarah = sorted((data_dir / "librispeech" / "test-other" / "1688").glob("*.flac"), key=os.path.getsize)[-3:]
    for target, source in zip(("sarah-1.wav", "sarah-2.wav", "clip.wav"), sarah):
        sf.write(here / target, sf.read(source, dtype="float32")[0], 16000)
    agent, customer = reader_utterances(data_dir, "1688", 2), reader_utterances(data_dir, "367", 2)
    mono, _ = build_conversation([("a", agent[0]), ("b", customer[0]), ("a", agent[1]), ("b", customer[1])])
    sides, reference = build_conversation([("a", agent[0]), ("b", np.zeros_like(customer[0])), ("a", agent[1]),
                                           ("b", np.zeros_like(customer[1]))])
    sf.write(here / "call.wav", np.stack([sides, mono - sides], axis=1), 16000)
    first = next(seg for seg, _, label in reference.itertracks(yield_label=True) if label == "a")
    said = "Thank you for calling, this is Sarah Johnson. How can I help?".split()
    words = [{"word": f" {w}", "start": round(first.start + 0.4 * i, 2), "end": round(first.start + 0.4 * i + 0.3, 2)}
             for i, w in enumerate(said)]
    (here / "whisper.json").write_text(json.dumps({"segments": [{"text": " ".join(said), "words": words}]}))
    return here


@pytest.mark.parametrize("name, code", python_blocks(), ids=[name for name, _ in python_blocks()])
def test_readme_python_block_runs_as_written(folder, name, code):
    script = folder / f"{name.replace('/', '_').replace('#', '_')}.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIARIZE_DATA_DIR": str(folder / f"data-{script.stem}")}
    out = subprocess.run([sys.executable, script.name], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"{name}:\n{code}\n{out.stderr[-3000:]}"


def test_there_are_blocks_to_run():
    assert len(python_blocks()) >= 4


def test_the_documented_result_json_has_the_keys_the_writer_gives():
    """README.md describes the result JSON once; its example has the keys ``Result.to_dict()`` writes."""
    from diarize.result import Evidence, IdentificationSummary, Identity, Result, Speaker, Utterance

    example = json.loads(re.search(r"```json\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1))
    alice = Identity("Alice", None, 0.95, (Evidence("introduction", 3.0, "Hi, I'm Alice.", 1.1, "A"),))
    written = Result([Utterance("A", 0.5, 4.1, 0.9, text="Hi, I'm Alice.")], [Speaker("A", 3.6, 1, identity=alice)],
                     6.0, "m", identification=IdentificationSummary()).to_dict()
    assert set(example) == set(written)
    assert set(example["utterances"][0]) == set(written["utterances"][0])
    assert set(example["speakers"][0]) == set(written["speakers"][0])
    assert set(example["speakers"][0]["identity"]) == set(written["speakers"][0]["identity"])
    evidence = example["speakers"][0]["identity"]["evidence"][0]
    assert set(evidence) == set(written["speakers"][0]["identity"]["evidence"][0])
