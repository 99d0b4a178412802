"""What a new user meets in the first hour: warnings that explain an empty or surprising result, one JSON
document for a result, transcript exports, ``--version`` and ``keys --data-dir``."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from diarize.captions import to_captions
from diarize.pipeline import result_warnings
from diarize.result import Evidence, Identity, Result, Speaker, Utterance

from .speech import reader_utterances, two_reader_conversation


def diarize_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diarize.cli", *args], capture_output=True, text=True, timeout=300,
                          **kwargs)


@pytest.fixture(scope="module")
def silent_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("first-use") / "silence.wav"
    sf.write(path, np.random.default_rng(0).normal(0, 1e-4, 16000 * 4).astype(np.float32), 16000)
    return path


@pytest.fixture(scope="module")
def two_readers(data_dir, tmp_path_factory):
    audio = two_reader_conversation(data_dir)
    path = tmp_path_factory.mktemp("first-use") / "talk.wav"
    sf.write(path, audio, 16000)
    return path


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_silence_exits_0_with_a_no_speech_warning_in_json_and_on_stderr(silent_file):
    out = diarize_cli("run", str(silent_file), "-q")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["utterances"] == [] and data["num_speakers"] == 0
    assert data["warnings"] == ["no speech found in 4.00 s of audio"]
    assert warning_lines(out.stderr) == ["warning: no speech found in 4.00 s of audio"]


def test_an_impossible_speaker_count_says_so(data_dir, tmp_path):
    clip = tmp_path / "clip.wav"
    sf.write(clip, reader_utterances(data_dir, "2033", 1)[0][16000:16000 + 12800], 16000)  # 0.8 s of speech
    out = diarize_cli("run", str(clip), "-q", "--num-speakers", "1000")
    assert out.returncode == 0, out.stderr
    warnings = json.loads(out.stdout)["warnings"]
    assert warnings[-1].startswith("num_speakers=1000 could not be met: found ")
    assert warning_lines(out.stderr) == [f"warning: {w}" for w in warnings]


def test_hint_warnings():
    assert result_warnings(0, 3.0) == ["no speech found in 3.00 s of audio"]
    assert result_warnings(0, 0.8, num_speakers=1000) == [
        "no speech found in 0.80 s of audio", "num_speakers=1000 could not be met: found 0 speaker(s) that can be "
                                              "told apart"]
    assert result_warnings(2, 30.0, num_speakers=2) == []
    assert result_warnings(2, 30.0, min_speakers=3)[0].startswith("min_speakers=3 could not be met")
    assert result_warnings(3, 30.0, min_speakers=2, max_speakers=4) == []


def test_run_json_is_the_one_document_config_on_request(two_readers):
    out = diarize_cli("run", str(two_readers), "-q")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"uri", "audio_duration", "num_speakers", "model", "utterances", "speakers", "warnings"}
    assert set(data["speakers"][0]) == {"speaker", "talk_time", "utterance_count"}
    assert {u["speaker"] for u in data["utterances"]} == {s["speaker"] for s in data["speakers"]}
    assert out.stderr == ""
    with_config = json.loads(diarize_cli("run", str(two_readers), "-q", "--include-config").stdout)
    assert with_config["config"]["method"] == "neural"
    assert {k: v for k, v in with_config.items() if k != "config"} == data


def identified() -> Result:
    bob = Identity("Bob", None, 0.9, (Evidence("introduction", 2.0, "my name is Bob", 0.6, "A"),))
    utterances = [Utterance("A", 0.5, 2.0, text="hello my name is Bob"), Utterance("B", 1.8, 4.0, text="hi Bob"),
                  Utterance("A", 4.2, 61.25, text="so")]
    return Result(utterances, [Speaker("A", 58.55, 2, identity=bob), Speaker("B", 2.2, 1)], 62.0)


def test_utterances_carry_their_speakers_identity_without_evidence():
    data = identified().to_dict()
    assert data["utterances"][0]["identity"] == {"name": "Bob", "role": None, "confidence": 0.9}
    assert "identity" not in data["utterances"][1]
    assert data["speakers"][0]["identity"]["evidence"][0]["text"] == "my name is Bob"
    assert Result.from_dict(data).utterances == identified().utterances


def test_srt_vtt_and_text_use_names_and_the_exclusive_view():
    srt = to_captions(identified(), "srt")
    assert srt.split("\n\n")[:3] == ["1\n00:00:00,500 --> 00:00:01,800\nBob: hello my name is Bob",  # B's is longer
                                     "2\n00:00:01,800 --> 00:00:04,000\nB: hi Bob",
                                     "3\n00:00:04,200 --> 00:01:01,250\nBob: so"]
    vtt = to_captions(identified(), "vtt")
    assert vtt.startswith("WEBVTT\n") and "00:00:01.800 --> 00:00:04.000\nB: hi Bob" in vtt
    assert to_captions(identified(), "txt") == "Bob: hello my name is Bob\nB: hi Bob\nBob: so\n"
    untimed = Result([Utterance("A", 0.5, 2.0), Utterance("A", 2.5, 3.0), Utterance("B", 3.0, 4.0)], [], 5.0)
    assert to_captions(untimed, "txt") == ("A: [00:00:00.500 - 00:00:03.000]\nB: [00:00:03.000 - 00:00:04.000]\n")


def test_run_format_srt(two_readers):
    out = diarize_cli("run", str(two_readers), "-q", "--format", "srt")
    assert out.returncode == 0, out.stderr
    blocks = out.stdout.strip().split("\n\n")
    assert len(blocks) >= 2
    for i, block in enumerate(blocks, 1):
        number, times, text = block.split("\n")
        assert number == str(i) and re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", times)
        assert text in {"A", "B"}


def test_version_and_keys_data_dir(tmp_path):
    from importlib import metadata

    out = diarize_cli("--version")
    assert out.returncode == 0 and out.stdout == f"diarize {metadata.version('diarize')}\n"
    out = diarize_cli("keys", "add", "acme", "--data-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    keys = json.loads((tmp_path / "keys.json").read_text())
    assert "acme" in json.dumps(keys) and out.stdout.strip() not in json.dumps(keys)
    listed = diarize_cli("keys", "list", "--data-dir", str(tmp_path))
    assert listed.returncode == 0 and "\tacme\t" in listed.stdout


def test_a_truncated_file_is_one_warning_line_not_a_python_warning(two_readers, tmp_path):
    cut = tmp_path / "cut.wav"
    data = two_readers.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the header still declares the whole length
    out = diarize_cli("run", str(cut), "-q")
    assert out.returncode == 0, out.stderr
    lines = warning_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "truncated file" in lines[0]
    assert "UserWarning" not in out.stderr
    assert json.loads(out.stdout)["warnings"] == [lines[0].removeprefix("warning: ")]
