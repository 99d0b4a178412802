import json
import subprocess
import sys

import pytest
import soundfile as sf

from diarize.result import read_rttm

from .speech import build_conversation, reader_utterances


def diarize_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diarize.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_speaker_file(data_dir, tmp_path_factory):
    a, b = reader_utterances(data_dir, "2033", 2), reader_utterances(data_dir, "3080", 2)
    audio, _ = build_conversation([("a", a[0]), ("b", b[0]), ("a", a[1]), ("b", b[1])])
    path = tmp_path_factory.mktemp("cli") / "talk.wav"
    sf.write(path, audio, 16000)
    return path


def test_run_writes_json_and_rttm(two_speaker_file, tmp_path):
    out = diarize_cli("run", str(two_speaker_file), "--quiet")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["num_speakers"] == 2 and data["uri"] == "talk"
    rttm = tmp_path / "talk.rttm"
    out = diarize_cli("run", str(two_speaker_file), "--format", "rttm", "-o", str(rttm), "--num-speakers", "2", "-q")
    assert out.returncode == 0, out.stderr
    assert sorted(read_rttm(rttm)["talk"].labels()) == ["A", "B"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.wav"], "missing.wav"),
        (["{file}", "--min-speakers", "3", "--max-speakers", "2"], "min_speakers"),
        (["{file}", "--num-speakers", "0"], "num_speakers"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(two_speaker_file, args, message):
    out = diarize_cli("run", *[a.format(file=two_speaker_file) for a in args], "-q")
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_overlapped_speech_by_default_one_speaker_at_a_time_with_exclusive(data_dir, tmp_path):
    """AMI trn09 has 8 s of overlapped speech: the default output overlaps, --exclusive and --profile fast do not."""
    meeting = data_dir / "ami-excerpts" / "trn09.wav"
    if not meeting.exists():
        pytest.skip(f"{meeting} not found")

    def overlap_seconds(*flags):
        out = diarize_cli("run", str(meeting), "-q", *flags)
        assert out.returncode == 0, out.stderr
        utterances = json.loads(out.stdout)["utterances"]
        spans = sorted((u["start"], u["end"]) for u in utterances)
        total = sum(e - s for s, e in spans)
        covered, reach = 0.0, 0.0
        for s, e in spans:
            covered += max(0.0, e - max(s, reach))
            reach = max(reach, e)
        return total - covered

    assert overlap_seconds() > 2.0
    assert overlap_seconds("--exclusive") == pytest.approx(0.0, abs=1e-6)
    assert overlap_seconds("--profile", "fast") == pytest.approx(0.0, abs=1e-6)
