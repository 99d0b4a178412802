"""The HTTP API on real speech: synchronous diarization, long audio as a job, jobs across server restarts."""

from __future__ import annotations

import signal
import time

import pytest

from diarize.result import read_rttm

from .servicekit import Server, auth, client, wav_bytes
from .speech import two_reader_conversation


@pytest.fixture(scope="module")
def conversation(data_dir) -> bytes:
    audio = two_reader_conversation(data_dir)
    return wav_bytes(audio)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with client(tmp_path_factory.mktemp("data"), sync_max_duration=28.0) as c:
        yield c


def test_diarize_answers_labeled_utterances(api, conversation):
    response = api.post("/v1/diarize", headers=auth(), files={"file": ("talk.wav", conversation, "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["num_speakers"] == 2 and body["model"] == "campplus-zh-en-common"
    assert {s["speaker"] for s in body["speakers"]} == {u["speaker"] for u in body["utterances"]} == {"A", "B"}
    turns = [u["speaker"] for u in body["utterances"]]
    assert [s for i, s in enumerate(turns) if i == 0 or s != turns[i - 1]] == ["A", "B", "A", "B"]
    for u in body["utterances"]:
        assert set(u) == {"speaker", "start", "end", "confidence"}
        assert 0 <= u["start"] < u["end"] <= body["audio_duration"] and 0 <= u["confidence"] <= 1


def test_rttm_and_count_hints(api, conversation, tmp_path):
    response = api.post("/v1/diarize?format=rttm", headers=auth(), data={"speakers_expected": "3"},
                        files={"file": ("talk.flac", conversation)})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    (tmp_path / "out.rttm").write_text(response.text)
    assert len(read_rttm(tmp_path / "out.rttm")["talk"].labels()) == 3
    bounded = api.post("/v1/diarize", headers=auth(), data={"speaker_options": '{"max_speakers_expected": 1}'},
                       files={"file": ("talk.wav", conversation)})
    assert bounded.json()["num_speakers"] == 1


def test_audio_over_the_synchronous_limit_becomes_a_job(api, data_dir):
    with open(data_dir / "ami-excerpts" / "trn09.wav", "rb") as f:
        response = api.post("/v1/diarize", headers=auth(), files={"file": ("trn09.wav", f)})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["Location"] == f"/v1/jobs/{job_id}"
    deadline = time.monotonic() + 120
    while (job := api.get(f"/v1/jobs/{job_id}", headers=auth()).json())["status"] != "succeeded":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.2)
    result = api.get(f"/v1/jobs/{job_id}/result", headers=auth()).json()
    assert result["audio_duration"] == pytest.approx(30.0, abs=0.01) and result["num_speakers"] >= 2
    rttm = api.get(f"/v1/jobs/{job_id}/result?format=rttm", headers=auth()).text
    assert rttm.startswith("SPEAKER trn09 1 ") and len(rttm.splitlines()) == len(result["utterances"])


def _wait_status(http, job_id: str, statuses: set[str], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}", headers=auth()).json()
        if job["status"] in statuses:
            return job
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} never reached {statuses}")


def test_job_result_survives_a_restart_and_a_killed_server_reruns_its_job(tmp_path, conversation):
    server = Server(tmp_path).start()
    try:
        with server.http() as http:
            done = http.post("/v1/jobs", headers=auth(), files={"file": ("talk.wav", conversation)}).json()["id"]
            assert _wait_status(http, done, {"succeeded", "failed"})["status"] == "succeeded"
            before = http.get(f"/v1/jobs/{done}/result", headers=auth()).json()
            interrupted = http.post("/v1/jobs", headers=auth(), files={"file": ("talk.wav", conversation)}).json()
            assert _wait_status(http, interrupted["id"], {"running", "succeeded"})["status"] == "running"
        server.stop(signal.SIGKILL)  # the whole process group: service and worker, mid-job
        server.start()
        with server.http() as http:
            assert http.get(f"/v1/jobs/{done}/result", headers=auth()).json() == before
            assert before["num_speakers"] == 2
            job = _wait_status(http, interrupted["id"], {"succeeded", "failed"})
            assert job["status"] == "succeeded" and job["attempts"] == 2
            assert http.get(f"/v1/jobs/{job['id']}/result", headers=auth()).json()["utterances"] == before["utterances"]
        server.stop()
        server.start()
        with server.http() as http:
            assert http.get(f"/v1/jobs/{done}", headers=auth()).json()["status"] == "succeeded"
    finally:
        server.stop()
    assert not list((tmp_path / "job-audio").iterdir()) and not list((tmp_path / "spool").iterdir())
