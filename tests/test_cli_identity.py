"""``diarize run`` with --multichannel, channel roles, known values, speaker profiles and a transcript."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from .conversations import build_scripted
from .speech import reader_utterances

CALL = [
    ("agent", "Thank you for calling Northwind, this is Sarah, how can I help you today?"),
    ("customer", "Hi Sarah, I'm calling about my internet bill, it went up a lot this month."),
    ("agent", "I'm sorry to hear that. Can I have your account number please?"),
    ("customer", "Sure, it's four five seven two nine one, the account is in my name."),
]


def diarize_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diarize.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def stereo_call(data_dir, tmp_path_factory):
    voices = {"agent": reader_utterances(data_dir, "2033", 2), "customer": reader_utterances(data_dir, "1688", 2)}
    call = build_scripted(CALL, voices, seed=4, channel_of={"agent": 0, "customer": 1}, bleed_db=-25.0)
    folder = tmp_path_factory.mktemp("cli-identity")
    sf.write(folder / "call.wav", call.audio.T, 16000)
    (folder / "words.json").write_text(json.dumps(call.words()))
    return folder


def test_multichannel_call_with_channel_roles_and_transcript(stereo_call):
    """One party per channel, so --num-speakers 1 (applied per channel, as hosted APIs do)."""
    out = diarize_cli("run", str(stereo_call / "call.wav"), "--multichannel", "--num-speakers", "1",
                      "--channel-roles", "1=Agent,2=Customer",
                      "--speaker-type", "role", "--known-values", "Agent,Customer",
                      "--transcript", str(stereo_call / "words.json"), "-q")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    identities = {s["speaker"]: s["identity"] for s in data["speakers"]}
    assert set(identities) == {"1A", "2A"}
    assert (identities["1A"]["name"], identities["1A"]["role"]) == ("Sarah", "Agent")
    assert identities["2A"]["role"] == "Customer"
    assert {e["source"] for e in identities["1A"]["evidence"]} >= {"channel", "role_phrase", "introduction"}
    texts = [u["text"] for u in data["utterances"] if u["channel"] == 2]
    assert " ".join(texts).startswith("Hi Sarah, I'm calling about my internet bill")
    assert data["identification"]["unassigned"] == []


@pytest.fixture(scope="module")
def tiny_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-bad") / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(path, np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32), 16000)
    (path.parent / "bad.json").write_text("[{\"word\": \"hi\", \"start\": 2, \"end\": 1}]")
    (path.parent / "speakers.json").write_text("[{\"description\": \"no name or role\"}]")
    return path


@pytest.mark.parametrize("args, message", [
    (["--channel-roles", "1=Agent,2=Customer"], "--channel-roles needs --multichannel"),
    (["--multichannel", "--channel-roles", "0=Agent"], "1=Agent,2=Customer"),
    (["--known-values", "Agent,Customer"], "known_values need speaker_type"),
    (["--speaker-type", "job", "--known-values", "Agent"], "speaker_type"),
    (["--transcript", "{dir}/bad.json"], "bad.json"),
    (["--speakers", "{dir}/speakers.json"], "'name' or a 'role'"),
    (["--speakers", "{dir}/missing.json"], "missing.json"),
])
def test_bad_identification_options_are_one_line_and_exit_1(tiny_wav, args, message):
    out = diarize_cli("run", str(tiny_wav), *[a.format(dir=tiny_wav.parent) for a in args], "-q")
    assert out.returncode == 1, out.stdout
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
