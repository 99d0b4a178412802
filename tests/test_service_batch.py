"""Directory jobs over HTTP on real speech: run_batch on the service's workers, per-file results, the archive jail,
cancellation, and a server killed mid-job that resumes without diarizing a finished file twice."""

from __future__ import annotations

import json
import multiprocessing
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .servicekit import Server, auth, calibration_file, client, error_of, wait_job
from .speech import build_conversation, reader_utterances

pytest.importorskip("qdrant_edge", reason="the embedded voiceprint store needs qdrant-edge-py (service extra)")

#: Three short calls, each reader in two of them: (first speaker, second speaker).
CALLS = [("2033", "3080"), ("3080", "1688"), ("1688", "2033")]


def make_calls(data_dir: Path, folder: Path) -> None:
    """Three two-speaker calls of about 10 s, a corrupt file in a subfolder, and a text file that is not audio."""
    speech = {r: reader_utterances(data_dir, r, 2) for pair in CALLS for r in pair}
    for i, (a, b) in enumerate(CALLS):
        audio, _ = build_conversation([(a, speech[a][i % 2][: 16000 * 5]), (b, speech[b][i % 2][: 16000 * 5])],
                                      seed=i)
        (folder / "calls").mkdir(parents=True, exist_ok=True)
        sf.write(folder / "calls" / f"call-{i}.wav", audio, 16000)
    (folder / "calls" / "sub").mkdir()
    (folder / "calls" / "sub" / "broken.wav").write_bytes(b"RIFF\x24\x10\x00\x00WAVEfmt " + bytes(np.arange(200) % 251))
    (folder / "calls" / "notes.txt").write_text("not audio\n")


@pytest.fixture(scope="module")
def archive(data_dir, tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("archive")
    make_calls(data_dir, top / "acme")
    (top / "secret.wav").write_bytes((top / "acme" / "calls" / "call-0.wav").read_bytes())
    (top / "acme" / "lists").mkdir()
    (top / "acme" / "lists" / "two.txt").write_text("# two calls\n../calls/call-1.wav\n../calls/call-2.wav\n")
    (top / "acme" / "lists" / "escape.txt").write_text("../calls/call-1.wav\n../../secret.wav\n")
    (top / "acme" / "linked").mkdir()
    (top / "acme" / "linked" / "ok.wav").symlink_to(top / "acme" / "calls" / "call-0.wav")
    (top / "acme" / "leaky").mkdir()
    (top / "acme" / "leaky" / "out.wav").symlink_to(top / "secret.wav")
    return top


@pytest.fixture(scope="module")
def api(archive, tmp_path_factory):
    calibration = calibration_file(tmp_path_factory.mktemp("cal"))
    extra = {"voiceprint_calibration": calibration} if calibration else {}
    with client(tmp_path_factory.mktemp("data"), archive_root=str(archive / "{tenant}"), **extra) as c:
        yield c




@pytest.fixture(scope="module")
def finished(api):
    response = api.post("/v1/jobs", headers=auth(), data={"path": "calls"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["source"] == "archive" and job["filename"] == "calls"
    assert job["batch"] == {"pattern": None, "files": 4, "done": 0, "failed": 0, "audio_seconds": 0.0}
    return wait_job(api, job["id"])


def test_a_directory_job_records_the_corrupt_file_and_diarizes_the_others(api, archive, finished):
    assert finished["status"] == "succeeded" and finished["progress"] == 1.0, finished
    expected = sum(sf.info(archive / "acme" / "calls" / f"call-{i}.wav").duration for i in range(3))
    batch = finished["batch"]
    assert (batch["files"], batch["done"], batch["failed"]) == (4, 4, 1)
    assert batch["audio_seconds"] == pytest.approx(expected, abs=0.05)
    result = api.get(finished["result_url"], headers=auth()).json()
    assert result["summary"]["files"] == 4 and result["summary"]["ok"] == 3 and result["summary"]["failed"] == 1
    assert result["audio_duration"] == pytest.approx(expected, abs=0.05)
    files = {f["file"]: f for f in result["files"]}
    assert sorted(files) == ["call-0.wav", "call-1.wav", "call-2.wav", "sub/broken.wav"]
    broken = files["sub/broken.wav"]
    assert broken["status"] == "failed" and "sub/broken.wav" in broken["error"] and str(archive) not in broken["error"]
    readers: dict[str, set[str]] = {}
    for i, (a, b) in enumerate(CALLS):
        record = files[f"call-{i}.wav"]
        assert record["status"] == "ok" and record["speakers"] == 2 and record["labels"] == ["A", "B"]
        assert record["result_url"] == f"/v1/jobs/{finished['id']}/files/call-{i}.wav"
        assert all(record["voice_ids"]), record
        for reader, voice in zip((a, b), record["voice_ids"]):
            readers.setdefault(reader, set()).add(voice)
    owners = [v for ids in readers.values() for v in ids]
    assert len(owners) == len(set(owners))  # no voice id spans two readers
    assert sum(len(ids) == 1 for ids in readers.values()) >= 2  # the same agent keeps one id across files


def test_one_file_of_the_job_in_json_and_rttm(api, finished):
    base = f"/v1/jobs/{finished['id']}/files"
    one = api.get(f"{base}/call-1.wav", headers=auth())
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["file"] == "call-1.wav" and body["num_speakers"] == 2 and len(body["utterances"]) >= 2
    listed = next(f for f in api.get(finished["result_url"], headers=auth()).json()["files"]
                  if f["file"] == "call-1.wav")
    assert [s["voice_id"] for s in body["speakers"]] == listed["voice_ids"]
    assert "centroid" not in json.dumps(body)
    rttm = api.get(f"{base}/call-1.wav?format=rttm", headers=auth())
    assert rttm.headers["content-type"].startswith("text/plain")
    assert len(rttm.text.splitlines()) == len(body["utterances"]) and rttm.text.startswith("SPEAKER call-1 1 ")
    failed = api.get(f"{base}/sub/broken.wav", headers=auth())
    assert failed.status_code == 409 and error_of(failed)["code"] == "file_failed"
    for name in ("nope.wav", "notes.txt", "../calls/call-1.wav"):
        assert api.get(f"{base}/{name}", headers=auth()).status_code == 404, name
    for url in (f"/v1/jobs/{finished['id']}", finished["result_url"], f"{base}/call-1.wav"):
        other = api.get(url, headers=auth("globex"))
        assert other.status_code == 403 and error_of(other)["code"] == "forbidden"


def test_a_manifest_and_a_pattern_choose_the_files(api):
    listed = api.post("/v1/jobs", headers=auth(), data={"path": "lists/two.txt"}).json()
    assert listed["batch"]["files"] == 2
    linked = api.post("/v1/jobs", headers=auth(), data={"path": "linked"}).json()  # a link inside the archive
    patterned = api.post("/v1/jobs", headers=auth(), data={"path": "calls", "pattern": "call-[12].wav"}).json()
    assert patterned["batch"]["files"] == 2 and patterned["batch"]["pattern"] == "call-[12].wav"
    for job in (listed, linked, patterned):
        assert wait_job(api, job["id"])["status"] == "succeeded"
    names = [f["file"] for f in api.get(f"/v1/jobs/{listed['id']}/result", headers=auth()).json()["files"]]
    assert names == ["calls/call-1.wav", "calls/call-2.wav"]  # a manifest's files: relative to the archive root
    [only] = api.get(f"/v1/jobs/{linked['id']}/result", headers=auth()).json()["files"]
    assert only["file"] == "ok.wav" and only["status"] == "ok"
    for job in (listed, linked, patterned):
        assert api.delete(f"/v1/jobs/{job['id']}", headers=auth()).status_code == 204


@pytest.mark.parametrize("form, status, code", [
    ({"path": ".."}, 403, "path_outside_archive"),
    ({"path": "calls/../../secret.wav"}, 403, "path_outside_archive"),
    ({"path": "leaky"}, 403, "path_outside_archive"),
    ({"path": "lists/escape.txt"}, 403, "path_outside_archive"),
    ({"path": "nowhere"}, 404, "audio_not_found"),
    ({"path": "calls", "pattern": "*.flac"}, 422, "no_audio_files"),
    ({"path": "calls/call-0.wav", "pattern": "*.wav"}, 422, "invalid_request"),
    ({"path": "calls", "transcript": '[{"word": "hi", "start": 0.1, "end": 0.3}]'}, 422, "not_available"),
    ({"path": "calls", "multichannel": "true", "channel_roles": "1=Agent,2=Customer"}, 422, "not_available"),
])
def test_paths_and_files_outside_the_archive_are_refused(api, archive, form, status, code):
    response = api.post("/v1/jobs", headers=auth(), data=form)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code and str(archive) not in error["message"]


def test_deleting_the_job_deletes_its_outputs_and_voice_observations(api, finished):
    voice = api.get(finished["result_url"], headers=auth()).json()["files"][0]["voice_ids"][0]
    seen = api.get(f"/v1/voices/{voice}/appearances", headers=auth()).json()["appearances"]
    assert seen and all(a["file_id"].startswith(finished["id"] + "/") for a in seen)
    folder = api.app.state.service.batches.folder(finished["id"])
    assert folder.is_dir()
    assert api.delete(f"/v1/jobs/{finished['id']}", headers=auth()).status_code == 204
    assert not folder.exists() and api.get(f"/v1/jobs/{finished['id']}", headers=auth()).status_code == 404
    after = api.get(f"/v1/voices/{voice}/appearances", headers=auth())
    assert after.status_code == 404 or not [a for a in after.json()["appearances"]
                                            if a["file_id"].startswith(finished["id"])]


def test_deleting_a_running_directory_job_stops_it(api):
    service = api.app.state.service
    job = api.post("/v1/jobs", headers=auth(), data={"path": "calls"}).json()
    wait_job(api, job["id"], lambda j: j["status"] == "running" and service.pool.busy_workers > 0)
    assert len(multiprocessing.active_children()) == service.pool.size  # the service's workers, no second pool
    started = time.monotonic()
    assert api.delete(f"/v1/jobs/{job['id']}", headers=auth()).status_code == 204
    assert time.monotonic() - started < 30
    assert not service.batches.folder(job["id"]).exists() and service.runner.running == 0
    wait = time.monotonic() + 10
    while service.pool.depth() and time.monotonic() < wait:  # the cancelled file leaves the queue
        time.sleep(0.05)
    assert service.pool.depth() == 0
    assert api.get(f"/v1/jobs/{job['id']}", headers=auth()).status_code == 404
    wait = time.monotonic() + 120
    while api.get("/readyz").status_code != 200 and time.monotonic() < wait:  # the killed worker is replaced
        time.sleep(0.2)
    ok = api.post("/v1/jobs", headers=auth(), data={"path": "calls/call-0.wav"}).json()
    assert wait_job(api, ok["id"])["status"] == "succeeded"


def test_a_killed_server_resumes_the_job_without_diarizing_a_file_twice(archive, tmp_path):
    server = Server(tmp_path, DIARIZE_ARCHIVE_ROOT=str(archive / "{tenant}"), DIARIZE_FINGERPRINT="false").start()
    out = tmp_path / "batches"
    try:
        with server.http() as http:
            job = http.post("/v1/jobs", headers=auth(), data={"path": "calls"}).json()
            wait_job(http, job["id"], lambda j: j["status"] == "running" and j["batch"]["done"] >= 1)
        server.stop(signal.SIGKILL)  # service and worker, mid-job
        out = out / job["id"] / "out"
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
        journal = [json.loads(line)["file"] for line in (out / ".diarize-batch/journal.jsonl").read_text().splitlines()]
        assert 0 < len(journal) < 4 and len(before) <= len(journal)
        server.start()
        with server.http() as http:
            done = wait_job(http, job["id"])
            assert done["status"] == "succeeded" and done["attempts"] == 2, done
            assert (done["batch"]["done"], done["batch"]["failed"]) == (4, 1)
            result = http.get(f"/v1/jobs/{job['id']}/result", headers=auth()).json()
    finally:
        server.stop()
    summary = result["summary"]
    assert summary["skipped"] == len(journal) and summary["processed"] == 4 - len(journal)
    assert {name: (out / name).stat().st_mtime_ns for name in before} == before  # not written again
    assert sorted(p.name for p in out.glob("call-*.json")) == ["call-0.wav.json", "call-1.wav.json", "call-2.wav.json"]
    entries = [json.loads(line)["file"] for line in (out / ".diarize-batch" / "journal.jsonl").read_text().splitlines()]
    assert sorted(entries) == ["call-0.wav", "call-1.wav", "call-2.wav", "sub/broken.wav"]
