"""Service parts without a worker: settings, keys, the job store's crash recovery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service.auth import Authenticator
from service.jobs import JobStore
from service.keys import KeyFile, KeyFileError, hash_key, parse_dev_keys
from service.settings import Settings


def test_settings_from_environment_over_a_toml_file(tmp_path, monkeypatch):
    toml = tmp_path / "service.toml"
    toml.write_text('workers = 3\nmax_upload_mb = 10\n[pipeline.clustering]\nmethod = "kmeans"\n')
    monkeypatch.setenv("DIARIZE_SETTINGS", str(toml))
    monkeypatch.setenv("DIARIZE_WORKERS", "2")
    monkeypatch.setenv("DIARIZE_DATA_DIR", str(tmp_path / "d"))
    s = Settings()
    assert s.workers == 2 and s.max_upload_bytes == 10 * 1024 * 1024
    assert s.pipeline == {"clustering": {"method": "kmeans"}}
    assert s.resolved_keys_file == tmp_path / "d" / "keys.json" and s.running_jobs == 1 and s.sync_queue_size == 4
    with pytest.raises(ValueError):
        Settings(sync_max_duration=100, max_duration=50)


def test_dev_keys_and_key_file(tmp_path):
    assert parse_dev_keys("acme:k1, a:b:k2") == {hash_key("k1"): "acme", hash_key("k2"): "a:b"}
    for bad in ("nokey", "acme:", "bad tenant:k"):
        with pytest.raises(KeyFileError):
            parse_dev_keys(bad)
    keys = KeyFile(tmp_path / "keys.json")
    record, key = keys.add("acme")
    auth = Authenticator(KeyFile(tmp_path / "keys.json"), "dev:devkey")
    assert auth.tenant(key) == "acme" and auth.tenant("devkey") == "dev" and auth.tenant(key + "x") is None
    assert key not in (tmp_path / "keys.json").read_text()
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    keys.revoke(record.key_id)
    assert auth.tenant(key) is None
    (tmp_path / "keys.json").write_text("not json")
    assert auth.tenant(key) is None  # a broken keys file refuses keys, it does not crash requests


def test_recovery_requeues_fails_or_finishes_interrupted_jobs(tmp_path):
    store = JobStore(tmp_path)
    ids = []
    for _ in range(3):
        job_id, audio = store.new_audio_path(".wav")
        store.create(job_id, "acme", source="upload", audio_path=str(audio), filename="a.wav", keep_audio=False,
                     audio_duration=1.0, options={})
        ids.append(job_id)
    for _ in range(3):
        store.claim_next()
    store.requeue(ids[1])
    store.claim_next()  # ids[1] is on its second attempt
    store.result_path(ids[2]).write_text(json.dumps({"audio_duration": 1.0, "utterances": []}))
    store.close()
    store = JobStore(tmp_path)
    assert store.recover(max_attempts=2) == {"finished": 1, "requeued": 1, "failed": 1}
    assert [store.get(i).status for i in ids] == ["queued", "failed", "succeeded"]
    assert store.get(ids[1]).error_code == "interrupted"
    store.close()


def test_a_database_from_before_directory_jobs_gains_their_column(tmp_path):
    import sqlite3

    from service.jobs import _SCHEMA

    old = _SCHEMA.replace(",\n    batch TEXT", "")
    assert "batch" not in old
    with sqlite3.connect(tmp_path / "jobs.db") as db:
        db.executescript(old)
        db.execute("INSERT INTO jobs (id, tenant, status, created_at, updated_at, source, audio_path, options)"
                   " VALUES ('old', 'acme', 'queued', 1, 1, 'upload', '/a.wav', '{}')")
    db.close()
    store = JobStore(tmp_path)
    assert store.get("old").batch is None and store.get("old").to_api()["batch"] is None
    batch = {"pattern": None, "files": 4, "done": 0, "failed": 0, "audio_seconds": 0.0}
    store.create("new", "acme", source="archive", audio_path="/calls", filename="calls", keep_audio=True,
                 audio_duration=None, options={}, batch=batch)
    store.claim_next()
    store.claim_next()
    store.batch_progress("new", {**batch, "done": 3, "failed": 1, "audio_seconds": 20.5})
    job = store.get("new")
    assert job.progress == 0.75 and job.stage == "files" and job.batch["audio_seconds"] == 20.5
    store.close()


def test_the_core_library_imports_nothing_of_http():
    code = (
        "import json, sys\n"
        "import diarize, diarize.cli, diarize.pipeline, diarize.voiceprints\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette', 'uvicorn', "
        "'service', 'prometheus_client'})))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []


def test_load_benchmark_builds_speech_and_rewrites_only_its_readme_section(tmp_path, data_dir):
    import io

    import soundfile as sf

    from benchmarks import load_service

    audio, rate = sf.read(io.BytesIO(load_service.speech_file(5.0)))
    assert rate == 16000 and len(audio) == 5 * 16000 and abs(audio).max() > 0.01
    readme = tmp_path / "README.md"
    readme.write_text("# benchmarks\n\nother sections\n")
    load_service.write_readme(readme, f"{load_service.START}\nfirst\n{load_service.END}")
    load_service.write_readme(readme, f"{load_service.START}\nsecond\n{load_service.END}")
    text = readme.read_text()
    assert text.startswith("# benchmarks\n\nother sections\n") and "second" in text and "first" not in text
    assert text.count("## HTTP service under load") == 1
