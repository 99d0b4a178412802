import json
import subprocess
import sys

import pytest
import soundfile as sf

from diarize.result import read_rttm

from .speech import two_reader_conversation


def diarize_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diarize.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_speaker_file(data_dir, tmp_path_factory):
    audio = two_reader_conversation(data_dir)
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


def _wav_claiming(path, *, rate: int | None = None) -> None:
    """A 3 s 8 kHz tone WAV, whose header may claim another sample rate."""
    import struct

    import numpy as np

    t = np.arange(8000 * 3) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 8000, subtype="PCM_16")
    if rate is not None:
        data = bytearray(path.read_bytes())
        data[24:32] = struct.pack("<II", rate, rate * 2)
        path.write_bytes(bytes(data))


def _silent_flac(path, hours: float) -> None:
    """Hours of silence in a few hundred KB of FLAC (its header gives the exact length)."""
    import numpy as np

    block = np.zeros(8000 * 600, np.int16)
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(int(hours * 6)):
            f.write(block)


def test_absurd_sample_rate_is_refused_up_front(tmp_path):
    """A 48 KB WAV whose header says 1 Hz was 13 hours of audio to decode and diarize (9 min, 4 GB)."""
    path = tmp_path / "one-hz.wav"
    _wav_claiming(path, rate=1)
    out = subprocess.run([sys.executable, "-m", "diarize.cli", "run", str(path), "-q"], capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 1 and "invalid sample rate 1 Hz" in out.stderr, out.stderr[-500:]


def test_run_and_batch_cap_the_duration(tmp_path):
    """By default ``run`` refuses 5 h of silent FLAC (over the 4 h default; 10 h took 2.7 GB) from its header;
    ``--max-duration`` sets the cap for ``run`` and ``batch``."""
    silence = tmp_path / "silence-5h.flac"
    _silent_flac(silence, 5)
    out = diarize_cli("run", str(silence), "-q")
    assert out.returncode == 1 and "exceeds max_duration=14400 s" in out.stderr, out.stderr[-500:]
    src = tmp_path / "src"
    src.mkdir()
    _wav_claiming(src / "three-seconds.wav")
    out = diarize_cli("run", str(src / "three-seconds.wav"), "-q", "--max-duration", "2")
    assert out.returncode == 1 and "exceeds max_duration=2 s" in out.stderr, out.stderr[-500:]
    out = diarize_cli("batch", str(src), "--out", str(tmp_path / "out"), "--workers", "0", "--no-fingerprint",
                      "-q", "--max-duration", "2")
    assert out.returncode == 1, out.stderr[-500:]
    [row] = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert row["status"] == "failed" and "exceeds max_duration=2 s" in row["error"]
