"""A crash in the middle of an enrollment leaves the old or the new speaker, never a half-written one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from diarize.voiceprints import Voiceprints
from diarize.voiceprints.store import EmbeddedStore

from ._voiceprint_fakes import CALIBRATION, ToneBackend, energy_vad, result, speaker, tone, voice_vector

pytest.importorskip("qdrant_edge", reason="qdrant-edge-py is not installed")

A = 200.0
TESTS = Path(__file__).parent


def _open(path: Path) -> Voiceprints:
    return Voiceprints(EmbeddedStore(path), ToneBackend(), vad=energy_vad, calibration=CALIBRATION)


def _state(vp: Voiceprints) -> tuple:
    """Everything a reader sees of tenant t: names, sample counts, speech, voiceprints."""
    speakers = vp.list_speakers("t")
    prints = [vp.speakers.nearest("t", voice_vector(A), 5)]
    return ([(s.name, s.n_samples, round(s.speech_seconds, 3)) for s in speakers],
            [np.round(v, 4).tolist() for hits in prints for _, v in hits])


def _assert_consistent(vp: Voiceprints) -> None:
    """Every listed sample exists and the voiceprint is the weighted mean of exactly those samples."""
    for record in vp.collection.scroll("t", "speaker", with_vectors=True):
        ids = record.payload["sample_ids"]
        samples = vp.collection.retrieve("t", ids, with_vectors=True)
        assert sorted(p.id for p in samples) == sorted(ids)
        w = np.array([min(p.payload["speech_seconds"], 60.0) for p in samples])
        mean = (w[:, None] * np.stack([p.vector for p in samples])).sum(axis=0)
        assert record.vector @ (mean / np.linalg.norm(mean)) == pytest.approx(1.0, abs=1e-4)
        assert record.payload["speech_seconds"] == pytest.approx(sum(p.payload["speech_seconds"] for p in samples))


class Crash(Exception):
    pass


def _crash() -> None:
    raise Crash


def test_interrupted_update_keeps_the_old_speaker(tmp_path):
    with _open(tmp_path) as vp:
        vp.enroll("t", "Alice", tone(A, 6))
        before = _state(vp)
        sample = vp.prepare(tone(A + 3, 8))
        with pytest.raises(Crash):
            vp.speakers.enroll("t", "Alice", [sample], before_commit=_crash)
        assert _state(vp) == before
        _assert_consistent(vp)
        assert vp.vacuum("t") == 1
        assert _state(vp) == before
        report = vp.speakers.enroll("t", "Alice", [sample])
        assert report.speaker.n_samples == 2
        _assert_consistent(vp)


def test_interrupted_creation_leaves_no_speaker(tmp_path):
    with _open(tmp_path) as vp:
        with pytest.raises(Crash):
            vp.speakers.enroll("t", "Alice", [vp.prepare(tone(A, 6))], before_commit=_crash)
        assert vp.list_speakers("t") == []
        assert vp.identify("t", _one_speaker())[0].name is None


def _one_speaker():
    return result(speaker("Speaker A", A))


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from tests._voiceprint_fakes import CALIBRATION, ToneBackend, energy_vad, tone
    from diarize.voiceprints import Voiceprints
    from diarize.voiceprints.store import EmbeddedStore

    path, when = sys.argv[1], sys.argv[2]
    vp = Voiceprints(EmbeddedStore(path), ToneBackend(), vad=energy_vad, calibration=CALIBRATION)
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
    sample = vp.prepare(tone(203.0, 8))
    if when == "before-commit":
        vp.speakers.enroll("t", "Alice", [sample], before_commit=kill)
    else:
        vp.speakers.enroll("t", "Alice", [sample])
        kill()
""")


@pytest.mark.parametrize("when", ["before-commit", "after-commit"])
def test_killed_process_leaves_old_or_new_state(tmp_path, when):
    with _open(tmp_path) as vp:
        vp.enroll("t", "Alice", tone(A, 6))
        old = _state(vp)
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), when], env=env)
    assert proc.returncode == -signal.SIGKILL
    with _open(tmp_path) as vp:
        state = _state(vp)
        _assert_consistent(vp)
        if when == "before-commit":
            assert state == old
        else:
            assert state[0] == [("Alice", 2, 14.0)] and state != old
        assert vp.identify("t", _one_speaker())[0].name == "Alice"


_LOOP = textwrap.dedent("""
    import sys
    from tests._voiceprint_fakes import CALIBRATION, ToneBackend, energy_vad, tone
    from diarize.voiceprints import Voiceprints
    from diarize.voiceprints.store import EmbeddedStore

    vp = Voiceprints(EmbeddedStore(sys.argv[1]), ToneBackend(), vad=energy_vad, calibration=CALIBRATION)
    print("ready", flush=True)
    for i in range(10000):
        vp.enroll("t", "Alice", tone(200.0 + (i % 7) * 0.5, 4 + i % 5))
        vp.enroll("t", f"Other {i}", tone(400.0 + 10 * (i % 40), 5))
        vp.delete_speaker("t", f"Other {i}")
""")


@pytest.mark.parametrize("delay", [0.3, 1.1])
def test_store_is_consistent_after_a_kill_at_any_moment(tmp_path, delay):
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    proc = subprocess.Popen([sys.executable, "-c", _LOOP, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with _open(tmp_path) as vp:
        _assert_consistent(vp)
        names = [s.name for s in vp.list_speakers("t")]
        assert set(names) <= {"Alice"} | {f"Other {i}" for i in range(10000)}
        assert len(names) <= 2
