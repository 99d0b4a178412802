"""Batch runs over archives of real speech: failures recorded, reruns skip, kill -9 and restart, Ray."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diarize.batch import BatchError, BatchOptions, run_batch
from diarize.batch.outputs import OutputFolder, output_paths
from diarize.batch.pools import ProcessPool, Task
from diarize.batch.sources import discover
from diarize.result import read_rttm

from .speech import build_conversation, reader_utterances

ROOT = Path(__file__).resolve().parents[1]
READERS = ["1688", "2033", "2609", "3080", "367"]
GOOD = 6


def make_archive(data_dir: Path, root: Path) -> list[str]:
    """Six two-speaker calls (10-25 s, pairs of five LibriSpeech readers) in a small tree, and a corrupt file."""
    speech = {r: reader_utterances(data_dir, r, 3) for r in READERS}
    names = []
    for i in range(GOOD):
        a, b = READERS[i % 5], READERS[(i + 2) % 5]
        audio, _ = build_conversation([(a, speech[a][i % 3][: 16000 * 8]), (b, speech[b][i % 3][: 16000 * 8])],
                                      seed=i)
        name = f"{'agent-a' if i % 2 else 'agent-b'}/call-{i}.wav"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, audio, 16000)
        names.append(name)
    (root / "agent-a" / "broken.wav").write_bytes(b"RIFF\x24\x10\x00\x00WAVEfmt " + bytes(np.arange(200) % 251))
    (root / "notes.txt").write_text("not audio, not matched\n")
    return sorted(names + ["agent-a/broken.wav"])


@pytest.fixture(scope="module")
def archive(data_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    make_archive(data_dir, root)
    return root


def tree(root: Path) -> dict[str, bytes]:
    """Every output under ``root`` by relative path: not the summary or journal (they hold timings)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "summary.json" and ".diarize-batch" not in p.parts}


@pytest.fixture(scope="module")
def first_run(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    seen = []
    summary = run_batch(archive, out, BatchOptions(workers=1, threads=2), on_result=seen.append)
    return out, summary, seen


def test_batch_writes_mirrored_outputs_and_records_the_corrupt_file(archive, first_run):
    out, summary, seen = first_run
    assert (summary.files, summary.ok, summary.failed, summary.processed) == (GOOD + 1, GOOD, 1, GOOD + 1)
    assert summary.audio_seconds > 60 and not summary.interrupted
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.wav"))
    broken = next(r for r in rows if r["file"] == "agent-a/broken.wav")
    assert broken["status"] == "failed" and "broken.wav" in broken["error"]
    for row in rows:
        json_path, rttm_path = output_paths(out, row["file"])
        assert json_path.exists() == rttm_path.exists() == (row["status"] == "ok")
        if row["status"] == "ok":
            doc = json.loads(json_path.read_text())
            assert doc["file"] == row["file"] and row["speakers"] == doc["num_speakers"] == 2
            assert abs(doc["audio_duration"] - sf.info(archive / row["file"]).duration) < 0.01
            assert sorted(read_rttm(rttm_path)[doc["uri"]].labels()) == row["labels"] == ["A", "B"]
    csv = (out / "index.csv").read_text().splitlines()
    assert csv[0] == "file,status,duration,speakers,labels,voice_ids,names,error" and len(csv) == GOOD + 2
    assert sorted(r.file for r in seen) == [r["file"] for r in rows]
    assert not [p for p in out.rglob("*.part")]


def test_second_run_does_nothing(archive, first_run):
    out, _, _ = first_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"}
    summary = run_batch(archive, out, BatchOptions(workers=1))
    assert (summary.processed, summary.skipped, summary.ok, summary.failed) == (0, GOOD + 1, GOOD, 1)
    assert summary.failures == [("agent-a/broken.wav", summary.failures[0][1])]
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_changed_input_and_lost_journal(archive, first_run, tmp_path):
    out, _, _ = first_run
    mirror = tmp_path / "out"
    subprocess.run(["cp", "-a", str(out), str(mirror)], check=True)
    changed = tmp_path / "src"
    subprocess.run(["cp", "-a", str(archive), str(changed)], check=True)
    os.utime(changed / "agent-b/call-0.wav", ns=(1, 1))
    (mirror / ".diarize-batch" / "journal.jsonl").unlink()  # outputs alone say what is done
    summary = run_batch(changed, mirror, BatchOptions(workers=0))
    assert summary.processed == 2  # the touched file, and the failure nobody recorded
    assert tree(mirror)["agent-b/call-0.wav.json"] != tree(out)["agent-b/call-0.wav.json"]  # new input key
    journal = (mirror / ".diarize-batch" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == GOOD + 1


def test_other_configuration_is_redone_and_failures_retried_on_request(archive, first_run, tmp_path):
    out, _, _ = first_run
    mirror = tmp_path / "out"
    subprocess.run(["cp", "-a", str(out), str(mirror)], check=True)
    summary = run_batch(archive, mirror, BatchOptions(workers=0, retry_failed=True, pattern="broken.wav"))
    assert summary.files == 1 and summary.processed == 1 and summary.failed == 1
    summary = run_batch(archive, mirror, BatchOptions(workers=0, num_speakers=1, pattern="call-[01].wav"))
    assert summary.processed == 2
    assert json.loads((mirror / "agent-b/call-0.wav.json").read_text())["num_speakers"] == 1


def test_hooks_run_in_input_order_and_their_ids_reach_every_output(archive, tmp_path):
    calls = []

    def fingerprint(file_id, result):
        calls.append(file_id)
        return {s.label: f"voice-{Path(file_id).stem}-{s.label}" for s in result.speakers}

    def identify(result):
        return {"A": "alice"}

    out = tmp_path / "out"
    options = BatchOptions(workers=2, fingerprint=True, identify=True)
    summary = run_batch(archive, out, options, fingerprint=fingerprint, identify=identify)
    assert summary.workers == 2 and summary.threads >= 1 and summary.ok == GOOD
    good = [f for f in discover(archive) if not f.rel.endswith("broken.wav")]
    assert calls == [str(f.path) for f in good]
    doc = json.loads((out / "agent-a/call-1.wav.json").read_text())
    assert [(s["speaker"], s["voice_id"], s["name"]) for s in doc["speakers"]] == [
        ("A", "voice-call-1-A", "alice"), ("B", "voice-call-1-B", None)]
    row = json.loads((out / "index.jsonl").read_text().splitlines()[1])
    assert row["voice_ids"] == ["voice-call-1-A", "voice-call-1-B"] and row["names"] == ["alice", None]


def test_a_failing_store_stops_the_run_and_keeps_what_was_done(archive, tmp_path):
    def fingerprint(file_id, result):
        if "call-3" in file_id:
            raise OSError("disk full")
        return {}

    with pytest.raises(BatchError, match="disk full"):
        run_batch(archive, tmp_path, BatchOptions(workers=0, fingerprint=True), fingerprint=fingerprint)
    done = [json.loads(line)["file"] for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert done == ["agent-a/broken.wav", "agent-a/call-1.wav"]  # committed in order, up to the failure


def next_outcome(pool: ProcessPool):
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for outcome in pool.poll(0.5):
            return outcome
    raise TimeoutError


def test_a_dead_worker_fails_its_file_only_and_is_replaced(archive, tmp_path):
    call, _ = sf.read(archive / "agent-b/call-0.wav", dtype="float32")
    sf.write(tmp_path / "long.wav", np.tile(call, 6), 16000)
    pool = ProcessPool(BatchOptions(), workers=1, threads=1)
    try:
        pool.submit(Task(0, str(archive / "agent-a/call-1.wav")))
        assert next_outcome(pool).payload["result"]["num_speakers"] == 2
        pool.submit(Task(1, str(tmp_path / "long.wav")))
        (child,) = multiprocessing.active_children()  # killed at once: the file is in flight, never finished
        os.kill(child.pid, signal.SIGKILL)
        died = next_outcome(pool)
        assert died.index == 1 and "died (killed by signal 9) on this file" in died.payload["error"]
        pool.submit(Task(2, str(archive / "agent-b/call-0.wav")))
        again = next_outcome(pool)
        assert again.index == 2 and again.payload["result"]["num_speakers"] == 2
    finally:
        pool.close(cancel=True)
    assert not multiprocessing.active_children()


def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "diarize.cli", "batch", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def children(pid: int) -> list[int]:
    return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]


def wait_gone(pids: list[int], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def fingerprinted(archive, tmp_path_factory) -> Path:
    """An uninterrupted CLI run with fingerprinting into ``whole/``; its store is moved aside to ``store-whole``."""
    pytest.importorskip("qdrant_edge", reason="the embedded voiceprint store needs qdrant-edge-py (dev extra)")
    base = tmp_path_factory.mktemp("fingerprinted")
    run = cli(*fingerprint_args(archive, base, "whole"))
    _, err = run.communicate(timeout=900)
    assert run.returncode == 1, err  # the corrupt file
    (base / "store").rename(base / "store-whole")
    return base


def fingerprint_args(archive: Path, base: Path, out: str) -> list[str]:
    return [str(archive), "--out", str(base / out), "--store", str(base / "store"), "--workers", "1", "--quiet"]


def test_the_same_reader_never_shares_a_voice_id_and_mostly_keeps_one(fingerprinted):
    voices: dict[str, set[str]] = {}
    for line in (fingerprinted / "whole" / "index.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["status"] == "ok":
            i = int(row["file"].split("call-")[1][0])
            readers = {"A": READERS[i % 5], "B": READERS[(i + 2) % 5]}  # A talks first
            for label, voice in zip(row["labels"], row["voice_ids"]):
                assert voice, row
                voices.setdefault(readers[label], set()).add(voice)
    owners = [v for ids in voices.values() for v in ids]
    assert len(owners) == len(set(owners))  # no voice id spans two people
    assert sum(len(ids) == 1 for ids in voices.values()) >= 4  # each reader is in two or three calls


def test_identify_names_the_enrolled_reader_in_every_call(archive, data_dir, tmp_path):
    pytest.importorskip("qdrant_edge", reason="the embedded voiceprint store needs qdrant-edge-py (dev extra)")
    from diarize.embeddings import load_backend
    from diarize.voiceprints import EmbeddedStore, Voiceprints

    with Voiceprints(EmbeddedStore(tmp_path / "store"), load_backend()) as vp:
        vp.enroll("default", "Agent 2033", reader_utterances(data_dir, "2033", 5)[3:])  # not in the archive
    options = BatchOptions(workers=1, identify=True, store=str(tmp_path / "store"), pattern="call-*")
    summary = run_batch(archive, tmp_path / "out", options)
    assert summary.ok == GOOD
    named = {}
    for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines():
        row = json.loads(line)
        named[row["file"]] = [n for n in row["names"] if n]
    assert named == {f: ["Agent 2033"] if f in ("agent-a/call-1.wav", "agent-b/call-4.wav") else [] for f in named}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc (Linux)")
def test_killed_and_restarted_run_matches_an_uninterrupted_one(archive, fingerprinted):
    args = fingerprint_args(archive, fingerprinted, "killed")  # a fresh store at the same path
    out = fingerprinted / "killed"
    killed = cli(*args)
    deadline = time.monotonic() + 300
    while not list(out.rglob("*.rttm")) and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = children(killed.pid)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert workers and wait_gone(workers)  # they die with the driver instead of finishing unwanted work
    assert 0 < sum(name.endswith(".rttm") for name in tree(out)) < GOOD
    rerun = cli(*args)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 1, err  # the corrupt file
    assert 0 < int(re.search(r"(\d+) done before", err).group(1)) < GOOD + 1
    assert tree(out) == tree(fingerprinted / "whole")
    journal = [json.loads(line)["file"] for line in
               (out / ".diarize-batch" / "journal.jsonl").read_text().splitlines()]
    assert sorted(journal) == sorted(set(journal)) and len(journal) == GOOD + 1


def test_cli_refuses_a_locked_folder(archive, tmp_path):
    with OutputFolder(tmp_path):
        locked = cli(str(archive), "--out", str(tmp_path), "--no-fingerprint")
        _, err = locked.communicate(timeout=120)
    assert locked.returncode == 2 and "another batch run" in err and len(err.strip().splitlines()) == 1


def test_multichannel_calls_get_speakers_per_channel(data_dir, tmp_path):
    a, b = reader_utterances(data_dir, "1688", 2), reader_utterances(data_dir, "367", 2)
    mono, _ = build_conversation([("a", a[0]), ("b", b[0]), ("a", a[1]), ("b", b[1])])
    sides, _ = build_conversation([("a", a[0]), ("b", np.zeros_like(b[0])), ("a", a[1]), ("b", np.zeros_like(b[1]))])
    stereo = np.stack([sides, mono - sides], axis=1)  # agent on the left, customer on the right
    (tmp_path / "src").mkdir()
    sf.write(tmp_path / "src" / "call.wav", stereo, 16000)
    summary = run_batch(tmp_path / "src", tmp_path / "out", BatchOptions(workers=1, multichannel=True,
                                                                         include_config=True))
    assert summary.ok == 1
    doc = json.loads((tmp_path / "out" / "call.wav.json").read_text())
    assert [(s["speaker"], s["channel"]) for s in doc["speakers"]] == [("1A", 1), ("2A", 2)]
    assert doc["config"]["multichannel"]["mode"] == "per channel"


def test_same_job_through_local_ray_gives_the_same_outputs(archive, first_run, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'diarize[ray]'")
    out, _, _ = first_run
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        summary = run_batch(archive, tmp_path, BatchOptions(ray="auto", workers=1, threads=2))
    finally:
        ray.shutdown()
    assert summary.backend == "ray" and summary.processed == GOOD + 1 and summary.failed == 1
    assert tree(tmp_path) == tree(out)
