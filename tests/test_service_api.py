"""The HTTP API end to end under TestClient with a real worker process: auth, limits, errors, jobs, metrics."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from service.keys import KeyFile
from service.pool import Task

from .servicekit import auth, client, error_of, tone, wav_bytes, wait_job


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    return tmp_path_factory.mktemp("keys") / "keys.json"


@pytest.fixture(scope="module")
def api(tmp_path_factory, keys_file):
    archive = tmp_path_factory.mktemp("archive")
    (archive / "acme").mkdir()
    (archive / "acme" / "tone.wav").write_bytes(wav_bytes(tone(3.0)))
    (archive / "secret.wav").write_bytes(wav_bytes(tone(3.0)))
    with client(tmp_path_factory.mktemp("data"), keys_file=keys_file, max_upload_mb=1.0, queue_size=0,
                archive_root=str(archive / "{tenant}")) as c:
        c.archive = archive
        yield c



def test_health_ready_docs_and_metrics(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready" and ready["workers_ready"] == 1 and ready["model"] == "campplus-zh-en-common"
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/diarize", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"} <= set(paths)
    text = api.get("/metrics").text
    for name in ("diarize_http_requests_total", "diarize_http_request_duration_seconds_bucket",
                 "diarize_queue_depth", "diarize_audio_seconds_processed_total", 'diarize_workers{state="ready"} 1.0'):
        assert name in text, name
    assert 'route="/healthz",status="200"' in text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic a2V5"}])
def test_every_v1_route_needs_a_valid_key(api, headers):
    for method, url in [("post", "/v1/diarize"), ("post", "/v1/jobs"), ("get", "/v1/jobs"), ("get", "/v1/jobs/x"),
                        ("get", "/v1/jobs/x/result"), ("delete", "/v1/jobs/x")]:
        response = api.request(method.upper(), url, headers=headers)
        assert response.status_code == 401, (method, url)
        assert error_of(response)["code"] == "unauthorized"


def test_keys_file_keys_work_and_revoked_keys_stop(api, keys_file):
    record, key = KeyFile(keys_file).add("initech")
    assert key not in keys_file.read_text() and record.sha256 in keys_file.read_text()
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/v1/jobs", headers=headers).json() == {"jobs": []}
    KeyFile(keys_file).revoke(record.key_id)
    assert api.get("/v1/jobs", headers=headers).status_code == 401


def _wav_with(field_offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(wav_bytes(tone(1.0)))
    data[field_offset:field_offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(data)


def _huge_data_chunk() -> bytes:
    data = bytearray(wav_bytes(tone(1.0)))
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(data)


MALFORMED = {
    "zero length": ("empty.wav", b""),
    "truncated inside the header": ("cut.wav", wav_bytes(tone(1.0))[:30]),
    "truncated WAV data": ("half.wav", wav_bytes(tone(2.0))[:32000]),
    "truncated FLAC": ("half.flac", wav_bytes(tone(2.0), fmt="FLAC")[:4000]),
    "wrong header: PNG named .wav": ("image.wav", b"\x89PNG\r\n\x1a\n" + bytes(600)),
    "wrong header: RIFF with junk": ("junk.wav", b"RIFF\x00\x01\x00\x00WAVEfmt " + np.random.default_rng(1).bytes(900)),
    "huge declared data size": ("huge.wav", _huge_data_chunk()),
    "huge declared sample rate": ("rate.wav", _wav_with(24, "<I", 0xFFFFFFF0)),
    "huge declared channel count": ("channels.wav", _wav_with(22, "<H", 0xFFFF)),
    "random bytes as .mp3": ("noise.mp3", np.random.default_rng(0).bytes(8192)),
    "random bytes as .m4a": ("noise.m4a", np.random.default_rng(2).bytes(8192)),
    "text as .flac": ("notes.flac", b"hello world\n" * 100),
    "ID3 tag and nothing else": ("tag.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(100)),
    "too short": ("blip.wav", wav_bytes(tone(0.05))),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_audio_is_4xx_and_the_server_keeps_serving(api, case):
    name, content = MALFORMED[case]
    for url in ("/v1/diarize", "/v1/jobs"):
        response = api.post(url, headers=auth(), files={"file": (name, content)})
        if url == "/v1/jobs" and response.status_code == 202:  # judged by the worker: the job fails
            job = wait_job(api, response.json()["id"])
            assert job["status"] == "failed" and job["error"]["code"] in ("corrupt_audio", "empty_audio")
            continue
        assert response.status_code in (413, 415, 422), (case, url, response.text)
        error = error_of(response)
        assert error["code"] in ("corrupt_audio", "unsupported_audio", "empty_audio", "invalid_audio")
        assert "/spool/" not in error["message"] and name in error["message"]
    assert api.get("/readyz").json()["workers_ready"] == 1
    ok = api.post("/v1/diarize", headers=auth(), files={"file": ("tone.wav", wav_bytes(tone(1.5)))})
    assert ok.status_code == 200, ok.text
    assert ok.json()["audio_duration"] == pytest.approx(1.5, abs=0.01)



def test_upload_over_the_limit_is_413(api):
    response = api.post("/v1/diarize", headers=auth(), files={"file": ("big.wav", bytes(1_100_000))})
    assert response.status_code == 413
    assert error_of(response)["code"] == "upload_too_large"


@pytest.mark.parametrize(
    "form, status, code",
    [
        ({"speakers_expected": "0"}, 422, "invalid_request"),
        ({"speakers_expected": "two"}, 422, "invalid_request"),
        ({"speaker_options": "{not json"}, 422, "invalid_options"),
        ({"speaker_options": '{"min_speakers_expected": 3, "max_speakers_expected": 2}'}, 422, "invalid_options"),
        ({"speaker_options": '{"maximum": 2}'}, 422, "invalid_options"),
        ({"speakers_expected": "2", "speaker_options": '{"max_speakers_expected": 3}'}, 422, "invalid_options"),
        ({"speaker_identification": '{"speaker_type": "age"}'}, 422, "invalid_options"),
        ({"speaker_identification": '{"known_values": ["Agent"]}'}, 422, "invalid_options"),
        ({"speaker_identification": '{"speakers": [{"description": "no name"}]}'}, 422, "invalid_options"),
        ({"speaker_identification": '{"speakers": [{"name": "Ana", "x": NaN}]}'}, 422, "invalid_options"),
        ({"channel_roles": '{"1": "Agent", "2": "Customer"}'}, 422, "invalid_options"),
        ({"multichannel": "true", "channel_roles": "0=Agent"}, 422, "invalid_options"),
        ({"multichannel": "true", "channel_roles": '{"1": "Agent", "01": "Customer"}'}, 422, "invalid_options"),
        ({"multichannel": "true", "channel_roles": "1=Agent,2=Customer"}, 422, "invalid_options"),  # mono audio
        ({"transcript": "{not json"}, 422, "invalid_options"),
        ({"transcript": "[" * 100_000}, 422, "invalid_options"),
        ({"transcript": '[{"word": "hi", "start": 2, "end": 1}]'}, 422, "invalid_options"),
        ({"transcript": '[{"word": "hi", "start": NaN, "end": 1}]'}, 422, "invalid_options"),
        ({"transcript": '{"segments": [{"start": 0, "end": 1, "text": "hi"}]}'}, 422, "invalid_options"),
    ],
)
def test_bad_options(api, form, status, code):
    response = api.post("/v1/diarize", headers=auth(), data=form, files={"file": ("t.wav", wav_bytes(tone(1.0)))})
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


def test_missing_file_and_unknown_routes_use_the_error_shape(api):
    assert error_of(api.post("/v1/diarize", headers=auth()))["code"] == "invalid_request"
    assert error_of(api.get("/v1/nothing", headers=auth()))["code"] == "not_found"
    not_allowed = api.put("/v1/jobs", headers=auth())
    assert error_of(not_allowed)["code"] == "method_not_allowed" and not_allowed.headers["Allow"] == "GET, POST"


def test_full_queue_answers_429_with_retry_after(api):
    pool = api.app.state.service.pool
    blocker = pool.submit(Task("sleep", {"seconds": 3}))
    try:
        response = api.post("/v1/diarize", headers=auth(), files={"file": ("t.wav", wav_bytes(tone(1.0)))})
        assert response.status_code == 429
        assert error_of(response)["code"] == "queue_full" and int(response.headers["Retry-After"]) >= 1
    finally:
        blocker.future.result(30)
    assert api.post("/v1/diarize", headers=auth(), files={"file": ("t.wav", wav_bytes(tone(1.0)))}).status_code == 200
    assert "diarize_queue_rejections_total 1.0" in api.get("/metrics").text


def test_jobs_are_scoped_to_the_tenant_and_deleted_with_their_audio(api):
    response = api.post("/v1/jobs", headers=auth(), data={"keep_audio": "true"},
                        files={"file": ("t.wav", wav_bytes(tone(2.0)))})
    assert response.status_code == 202 and response.headers["Location"] == f"/v1/jobs/{response.json()['id']}"
    job = wait_job(api, response.json()["id"])
    assert job["status"] == "succeeded" and job["keep_audio"] and job["result_url"].endswith("/result")
    kept = list((api.app.state.service.data_dir / "job-audio").glob(f"{job['id']}*"))
    assert len(kept) == 1
    for method in ("GET", "DELETE"):
        other = api.request(method, f"/v1/jobs/{job['id']}", headers=auth("globex"))
        assert other.status_code == 403 and error_of(other)["code"] == "forbidden"
    assert api.get(f"/v1/jobs/{job['id']}/result", headers=auth("globex")).status_code == 403
    assert [j["id"] for j in api.get("/v1/jobs", headers=auth("globex")).json()["jobs"]] == []
    assert job["id"] in [j["id"] for j in api.get("/v1/jobs", headers=auth()).json()["jobs"]]
    assert api.get(f"/v1/jobs/{job['id']}/result", headers=auth()).json()["audio_duration"] == pytest.approx(2.0)
    assert api.delete(f"/v1/jobs/{job['id']}", headers=auth()).status_code == 204
    assert not kept[0].exists()
    assert api.get(f"/v1/jobs/{job['id']}", headers=auth()).status_code == 404


def test_uploaded_audio_is_not_kept_after_processing(api):
    response = api.post("/v1/jobs", headers=auth(), files={"file": ("t.wav", wav_bytes(tone(2.0)))})
    job = wait_job(api, response.json()["id"])
    assert job["status"] == "succeeded"
    data_dir = api.app.state.service.data_dir
    assert not list((data_dir / "job-audio").glob(f"{job['id']}*"))
    assert not list((data_dir / "spool").iterdir())


def test_archive_paths_stay_inside_the_tenant_root(api):
    ok = api.post("/v1/jobs", headers=auth(), data={"path": "tone.wav"})
    assert ok.status_code == 202, ok.text
    assert wait_job(api, ok.json()["id"])["status"] == "succeeded"
    assert (api.archive / "acme" / "tone.wav").exists()  # the archive's own file is never deleted
    (api.archive / "acme" / "link.wav").symlink_to(api.archive / "secret.wav")
    for path, status, code in [
        ("../secret.wav", 403, "path_outside_archive"),
        (str(api.archive / "secret.wav"), 403, "path_outside_archive"),
        ("link.wav", 403, "path_outside_archive"),
        ("missing.wav", 404, "audio_not_found"),
        ("bad\x00name.wav", 422, "invalid_path"),
    ]:
        response = api.post("/v1/jobs", headers=auth(), data={"path": path})
        assert response.status_code == status, (path, response.text)
        assert error_of(response)["code"] == code
    assert api.post("/v1/jobs", headers=auth("globex"), data={"path": "tone.wav"}).status_code == 404
    both = api.post("/v1/jobs", headers=auth(), data={"path": "tone.wav"}, files={"file": ("t.wav", b"x")})
    assert both.status_code == 422 and error_of(both)["code"] == "invalid_request"
