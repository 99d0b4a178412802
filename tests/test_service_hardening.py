"""Hostile input against the running app: it is refused with a 4xx in the one error shape, and it never
corrupts the voiceprint store, leaks a server path, or grows the service without bound."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("qdrant_edge", reason="the embedded voiceprint store needs qdrant-edge-py (service extra)")

from diarize.voiceprints import EnrollmentSample
from diarize.voiceprints.store import EmbeddedStore

from ._voiceprint_fakes import traces
from .servicekit import auth, calibration_file, client, error_of, wait_job


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _settings(folder) -> dict:
    calibration = calibration_file(folder)
    return {"data_dir": folder / "data"} | ({"voiceprint_calibration": calibration} if calibration else {})


def _enroll_vector(api, tenant: str, name: str, seed: int) -> str:
    """Enroll ``name`` for ``tenant`` straight through the service's store (a random voice vector)."""

    def enroll(vp):
        vector = np.random.default_rng(seed).normal(size=vp.backend.dimension).astype(np.float32)
        sample = EnrollmentSample(vector / np.linalg.norm(vector), 12.0, "test", f"digest{seed}")
        return vp.speakers.enroll(tenant, name, [sample], metadata={"team": "blue"}).speaker.speaker_id

    return api.app.state.service.voice.call(enroll)


def _speakers(api, tenant: str) -> list[dict]:
    response = api.get("/v1/speakers", headers=auth(tenant))
    assert response.status_code == 200, response.text
    return response.json()["speakers"]


def test_hostile_metadata_is_refused_and_never_reaches_the_store(tmp_path):
    settings = _settings(tmp_path)
    with client(**settings) as api:
        ana = _enroll_vector(api, "acme", "Ana", 1)
        _enroll_vector(api, "globex", "Gus", 2)
        url = f"/v1/speakers/{ana}"
        bodies = {
            "deep": json.dumps({"metadata": _nested(200)}),  # was 503, then the store was unreadable for all
            "nan": '{"metadata": {"x": NaN}}',  # was a 500 and a dropped connection
            "infinity": '{"metadata": {"x": [Infinity]}}',
            "huge-int": json.dumps({"metadata": {"x": 1 << 80}}),
            "large": json.dumps({"metadata": {"x": "y" * (2 << 20)}}),  # was accepted; every list then carried it
        }
        for what, body in bodies.items():
            response = api.patch(url, headers=auth() | {"content-type": "application/json"}, content=body)
            assert response.status_code == 422, (what, response.status_code, response.text[:300])
            error_of(response)
        for raw in ("[" * 5000, json.dumps(_nested(20)), '{"x": NaN}', "x" * 20000):  # "[" * 5000 was a 500
            response = api.post("/v1/speakers", headers=auth(), data={"name": "Zed", "metadata": raw},
                                files=[("files", ("s.wav", b"RIFF"))])
            assert response.status_code == 422 and error_of(response)["code"] == "invalid_metadata", raw[:20]
        ok = api.patch(url, headers=auth(), json={"metadata": {"seat": 2, "tags": ["a", {"b": 1.5}]}})
        assert ok.status_code == 200 and ok.json()["metadata"] == {"team": "blue", "seat": 2, "tags": ["a", {"b": 1.5}]}
        assert [s["name"] for s in _speakers(api, "acme")] == ["Ana"]
    with client(**settings) as api:  # after a restart the store opens and every tenant is served
        assert api.get("/readyz").json()["voiceprints"] is True
        assert [(s["name"], s["metadata"]["seat"]) for s in _speakers(api, "acme")] == [("Ana", 2)]
        assert [s["name"] for s in _speakers(api, "globex")] == ["Gus"]


def test_store_errors_never_show_server_paths(tmp_path):
    settings = _settings(tmp_path)
    data = str(settings["data_dir"])
    with EmbeddedStore(settings["data_dir"]):  # another process holds the store: the service cannot open it
        with client(**settings) as api:
            ready = api.get("/readyz").json()
            assert ready["voiceprints"] is False and ready["detail"] and data not in ready["detail"]
            assert "<data_dir>" in ready["detail"]
            response = api.get("/v1/speakers", headers=auth())
            assert response.status_code == 503 and data not in error_of(response)["message"]
            assert not any(part in response.text for part in ("/tmp/", str(tmp_path)))


def test_deleting_a_speaker_over_the_api_leaves_no_trace_in_the_store_files(tmp_path):
    settings = _settings(tmp_path)
    with client(**settings) as api:
        ana = _enroll_vector(api, "acme", "Ana Secretname", 3)
        _enroll_vector(api, "globex", "Gus Keeper", 4)
        voice = api.app.state.service.voice
        ana_bytes = voice.call(lambda vp: [p.vector.tobytes() for p in vp.collection.scroll("acme", with_vectors=True)])
        gus_bytes = voice.call(lambda vp: [p.vector.tobytes() for p in vp.collection.scroll("globex", with_vectors=True)])
        root = settings["data_dir"] / "voiceprints"
        assert traces(root, ana_bytes + [b"Ana Secretname"]) == len(ana_bytes) + 1 == 3
        assert api.delete(f"/v1/speakers/{ana}", headers=auth()).status_code == 204
        assert traces(root, ana_bytes + [b"Ana Secretname"]) == 0
        assert traces(root, gus_bytes + [b"Gus Keeper"]) == 3
        assert [s["name"] for s in _speakers(api, "globex")] == ["Gus Keeper"]


def test_made_up_methods_and_paths_do_not_grow_the_metrics(tmp_path):
    """40,000 requests with made-up methods made 840,000 series (a 77 MB /metrics); labels are now bounded."""
    import re

    with client(**_settings(tmp_path)) as api:
        before = len(api.get("/metrics").text)
        for i in range(300):
            response = api.request(f"X{i}Y", f"/v1/jobs/{i}" if i % 2 else f"/no/such/path/{i}")
            assert 400 <= response.status_code < 500
        text = api.get("/metrics").text
        methods = set(re.findall(r'diarize_http_requests_total\{method="([^"]*)"', text))
        routes = set(re.findall(r'diarize_http_requests_total\{[^}]*route="([^"]*)"', text))
        assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"} and "other" in methods
        assert routes <= {"/metrics", "/readyz", "/v1/jobs/{job_id}", "unmatched"}, routes
        assert len(text) < before + 20_000


def test_reading_jobs_never_parses_their_transcripts(tmp_path, monkeypatch):
    """Three jobs with 17 MB transcripts made one GET /v1/jobs take 47 s (and four 7.7 GB): each read parsed
    every transcript. They are kept beside the job record now, read only to run the job."""
    import time

    import service.models
    from .servicekit import tone, wav_bytes

    words = json.dumps([{"word": f"w{i}", "start": i * 0.01, "end": i * 0.01 + 0.005} for i in range(200)] * 150)
    assert len(words) > 1_500_000
    with client(**_settings(tmp_path), job_concurrency=1) as api:
        ids = []
        for i in range(3):
            response = api.post("/v1/jobs", headers=auth(), files={"file": ("t.wav", wav_bytes(tone(2.0))),
                                                                    "transcript": ("w.json", words.encode())})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        for job_id in ids:  # running a job reads its transcript; reading it afterwards must not
            assert wait_job(api, job_id)["status"] == "succeeded"
        parsed = []
        real = service.models.parse_transcript
        monkeypatch.setattr(service.models, "parse_transcript", lambda value: parsed.append(1) or real(value))
        start = time.perf_counter()
        listed = api.get("/v1/jobs", headers=auth())
        one = api.get(f"/v1/jobs/{ids[0]}", headers=auth())
        elapsed = time.perf_counter() - start
        assert listed.status_code == one.status_code == 200
        assert sorted(j["id"] for j in listed.json()["jobs"]) == sorted(ids)
        assert "transcript" not in one.json()["options"] and not parsed
        assert elapsed < 5.0, elapsed
        assert len(api.app.state.service.store.transcript(ids[0])) == 30_000


def _chunked_form(size: int):
    """A multipart upload of ``size`` bytes sent without Content-Length (chunked)."""
    yield b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    for _ in range(size // 65536):
        yield b"\0" * 65536
    yield b"\r\n--XX--\r\n"


def test_an_oversized_chunked_upload_is_413(tmp_path):
    """Without Content-Length the limit trips inside the body parser, which answered 400 "error parsing the body"."""
    settings = _settings(tmp_path)
    with client(**settings, max_upload_mb=1) as api:
        for method, url, content_type in (("POST", "/v1/diarize", "multipart/form-data; boundary=XX"),
                                          ("POST", "/v1/jobs", "multipart/form-data; boundary=XX"),
                                          ("POST", "/v1/speakers", "multipart/form-data; boundary=XX"),
                                          ("PATCH", "/v1/speakers/x", "application/json")):
            response = api.request(method, url, headers=auth() | {"content-type": content_type},
                                   content=_chunked_form(3 << 20))
            assert response.status_code == 413, (url, response.text)
            assert error_of(response)["code"] == "upload_too_large"
        assert api.get("/readyz").status_code == 200
        assert not list((settings["data_dir"] / "spool").glob("*"))


def _speech(data_dir, reader: str, seconds: float) -> np.ndarray:
    from .speech import reader_utterances

    return np.concatenate(reader_utterances(data_dir, reader, 3))[: int(16000 * seconds)]


def _observations(api, tenant: str = "acme") -> list:
    return api.app.state.service.voice.call(lambda vp: list(vp.collection.scroll(tenant, "observation")))


def test_a_job_deleted_as_it_finishes_leaves_no_observations(tmp_path, data_dir, monkeypatch):
    """4 of 80 jobs deleted near completion kept their observations: the delete fell between the job's voice
    observations and its result. Storing a job's outcome and deleting the job now exclude each other."""
    import threading
    import time

    from .servicekit import wav_bytes

    with client(**_settings(tmp_path)) as api:
        svc = api.app.state.service
        finishing = threading.Event()
        real = svc.voice.annotate

        def slow_annotate(*args, **kwargs):
            finishing.set()
            time.sleep(1.5)  # the DELETE arrives while the job stores its outcome
            return real(*args, **kwargs)

        monkeypatch.setattr(svc.voice, "annotate", slow_annotate)
        job = api.post("/v1/jobs", headers=auth(), files={"file": ("a.wav", wav_bytes(_speech(data_dir, "2033", 8)))})
        assert job.status_code == 202, job.text
        assert finishing.wait(120)
        assert api.delete(f"/v1/jobs/{job.json()['id']}", headers=auth()).status_code == 204
        deadline = time.monotonic() + 30
        while svc.runner.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.get(f"/v1/jobs/{job.json()['id']}", headers=auth()).status_code == 404
        assert _observations(api) == []
        monkeypatch.setattr(svc.voice, "annotate", real)  # the control: a job left alone is observed
        kept = api.post("/v1/jobs", headers=auth(), files={"file": ("b.wav", wav_bytes(_speech(data_dir, "3080", 8)))})
        assert wait_job(api, kept.json()["id"])["status"] == "succeeded"
        assert {o.payload["file_id"] for o in _observations(api)} == {kept.json()["id"]}


def test_a_job_queued_at_start_waits_for_the_voiceprint_store(tmp_path, data_dir):
    """A directory job resumed after a restart ran before the store was open: every file redone without voice
    ids ("voiceprints skipped: the store is still opening"). Jobs now start once the store has opened."""
    import soundfile as sf

    from diarize.batch.outputs import output_paths
    from service.jobs import JobStore

    calls = tmp_path / "archive" / "acme" / "calls"
    calls.mkdir(parents=True)
    for i, reader in enumerate(("2033", "3080", "1688")):
        sf.write(calls / f"call-{i}.wav", _speech(data_dir, reader, 12), 16000)
    settings = _settings(tmp_path) | {"archive_root": str(tmp_path / "archive" / "{tenant}")}
    with client(**settings) as api:
        response = api.post("/v1/jobs", headers=auth(), data={"path": "calls"})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
    store = JobStore(settings["data_dir"])  # a graceful stop puts a running directory job back in the queue
    assert store.get(job_id).status == "queued"
    store.close()
    with client(**settings) as api:
        job = wait_job(api, job_id)
        assert job["status"] == "succeeded", job
        result = api.get(job["result_url"], headers=auth()).json()
        assert not [w for w in result["warnings"] if "voiceprints skipped" in w], result["warnings"]
        assert [bool(f["voice_ids"]) for f in result["files"]] == [True, True, True], result["files"]
        assert api.delete(f"/v1/jobs/{job_id}", headers=auth()).status_code == 204
        assert _observations(api) == []
