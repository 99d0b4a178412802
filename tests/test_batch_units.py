"""Batch pieces that need no speech: finding inputs, the output folder, options, the hint check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from diarize.batch import BatchError, BatchOptions, run_batch
from diarize.batch.outputs import OutputFolder, output_paths, write_atomic
from diarize.batch.records import FileRecord
from diarize.batch.sources import discover, input_key
from diarize.errors import ConfigError


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_tree_gives_audio_files_sorted_and_skips_the_output_folder(tmp_path):
    for name in ["b/2.flac", "a/1.WAV", "a/notes.txt", "out/x.wav", "c.mp3"]:
        touch(tmp_path / name)
    found = discover(tmp_path, exclude=tmp_path / "out")
    assert [i.rel for i in found] == ["a/1.WAV", "b/2.flac", "c.mp3"]
    assert [i.rel for i in discover(tmp_path, "*.flac")] == ["b/2.flac"]
    assert [i.rel for i in discover(tmp_path, "a/*")] == ["a/1.WAV", "a/notes.txt"]


def test_a_manifest_lists_relative_absolute_and_missing_paths_once(tmp_path):
    outside = touch(tmp_path / "elsewhere" / "far.wav")
    touch(tmp_path / "list" / "near" / "one.wav")
    manifest = tmp_path / "list" / "calls.txt"
    manifest.write_text(f"# calls\nnear/one.wav\n\n./near/one.wav\n{outside}\nmissing.wav\n")
    found = discover(manifest)
    assert [i.rel for i in found] == ["missing.wav", "near/one.wav", str(outside).lstrip("/")]
    assert found[1].path == tmp_path / "list" / "near" / "one.wav" and found[2].path == outside
    assert input_key(found[0]) is None and input_key(found[1]).startswith("stat:1:")
    assert input_key(found[1], "sha256") == "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_missing_source_is_a_batch_error(tmp_path):
    with pytest.raises(BatchError, match="no such directory or manifest"):
        discover(tmp_path / "nope")


def test_outputs_mirror_the_input_name_and_writes_leave_no_temporary(tmp_path):
    json_path, rttm_path = output_paths(tmp_path, "a/call.wav")
    assert (json_path, rttm_path) == (tmp_path / "a/call.wav.json", tmp_path / "a/call.wav.rttm")
    write_atomic(json_path, "{}")
    write_atomic(json_path, "[]")
    assert json_path.read_text() == "[]" and [p.name for p in json_path.parent.iterdir()] == ["call.wav.json"]


def test_journal_survives_a_torn_line_and_one_run_holds_the_folder(tmp_path):
    record = FileRecord("a.wav", "failed", error="bad", input_key="stat:1:2", config_hash="h")
    with OutputFolder(tmp_path) as folder:
        folder.record(record)
        with pytest.raises(BatchError, match="another batch run"):
            OutputFolder(tmp_path).__enter__()
    with open(tmp_path / ".diarize-batch" / "journal.jsonl", "a") as f:
        f.write('{"file": "b.wav", "sta')  # kill -9 in the middle of a line
    with OutputFolder(tmp_path) as folder:
        assert folder.previous == {"a.wav": record}
        assert folder.done_before("a.wav", "stat:1:2", "h") == record
        assert folder.done_before("a.wav", "stat:1:3", "h") is None
        assert folder.done_before("a.wav", "stat:1:2", "other config") is None


def test_config_hash_follows_what_shapes_outputs_only():
    base = BatchOptions()
    assert base.config_hash() == BatchOptions(workers=4, threads=1, ray="auto", retry_failed=True).config_hash()
    assert base.config_hash() != BatchOptions(max_speakers=3).config_hash()
    assert base.config_hash() != BatchOptions(fingerprint=True).config_hash()
    capped = base.pipeline.model_copy(update={"audio": base.pipeline.audio.model_copy(update={"max_duration": 60.0})})
    assert base.config_hash() == BatchOptions(pipeline=capped).config_hash()  # a cap refuses files, shapes none
    assert BatchOptions.model_validate_json(base.model_dump_json()) == base


def test_bad_hints_stop_before_any_work(tmp_path):
    touch(tmp_path / "src" / "a.wav")
    with pytest.raises(ConfigError, match="min_speakers"):
        run_batch(tmp_path / "src", tmp_path / "out", BatchOptions(min_speakers=3, max_speakers=2))
    assert not (tmp_path / "out").exists()


def test_batch_package_imports_neither_ray_nor_torch():
    code = ("import sys, json, diarize.batch, diarize.cli; "
            "print(json.dumps([m for m in ('ray', 'torch') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


class _CallerPool:
    """A caller's pool: fails every file with its own message, counts closes."""

    slots, threads = 2, 3

    def __init__(self):
        self.held, self.closed, self.seen = [], 0, []

    def free(self):
        return len(self.held) < self.slots

    def submit(self, task):
        self.held.append(task)
        self.seen.append(task.path)

    def poll(self, timeout):
        from diarize.batch.pools import Outcome

        done, self.held = self.held, []
        return [Outcome(t.index, {"error": "refused"}) for t in done]

    def close(self, cancel=False):
        self.closed += 1


def test_a_given_pool_runs_the_files_and_is_left_open_for_its_owner(tmp_path):
    from diarize.batch.sources import Input

    inputs = [Input(touch(tmp_path / "src" / name), f"calls/{name}") for name in ("b.wav", "a.wav")]
    plans, pool = [], _CallerPool()
    summary = run_batch(inputs, tmp_path / "out", BatchOptions(workers=0), pool=pool, on_start=plans.append)
    assert pool.seen == [str(tmp_path / "src" / "a.wav"), str(tmp_path / "src" / "b.wav")] and pool.closed == 0
    assert (plans[0].backend, plans[0].workers, plans[0].threads) == ("external", 2, 3)
    assert (summary.files, summary.failed, summary.backend) == (2, 2, "external")
    rows = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert [(r["file"], r["error"]) for r in rows] == [("calls/a.wav", "refused"), ("calls/b.wav", "refused")]
    again = run_batch(inputs, tmp_path / "out", BatchOptions(workers=0), pool=pool, on_start=plans.append)
    assert again.skipped == 2 and again.processed == 0 and plans[1].skipped == 2 and len(pool.seen) == 2


def test_a_worker_keeps_every_thread_pool_to_its_share_of_the_cores():
    """BLAS and OpenMP pools of one thread per worker: a pool per core in each worker oversubscribes the CPU."""
    script = (
        "from threadpoolctl import threadpool_info\n"
        "from diarize.batch import BatchOptions\n"
        "from diarize.batch.worker import Worker\n"
        "Worker(BatchOptions(), threads=1)\n"
        "print(max(pool['num_threads'] for pool in threadpool_info()))\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert shown.stdout.split()[-1] == "1"
