"""Voiceprint endpoints on real speech: enroll then identify, named diarization, voices across jobs, restarts."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("qdrant_edge", reason="the embedded voiceprint store needs qdrant-edge-py (service extra)")

from .servicekit import auth, calibration_file, client, tone, wav_bytes, wait_job
from .speech import build_conversation, reader_utterances

@pytest.fixture(scope="module")
def voices(data_dir):
    return {"ana": reader_utterances(data_dir, "2033", 6), "bo": reader_utterances(data_dir, "3080", 6)}


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    options = {"data_dir": tmp_path_factory.mktemp("data"), "sync_max_duration": 60.0}
    calibration = calibration_file(tmp_path_factory.mktemp("cal"))
    return options | ({"voiceprint_calibration": calibration} if calibration else {})


@pytest.fixture(scope="module")
def api(settings):
    with client(**settings) as c:
        assert c.get("/readyz").json()["voiceprints"] is True
        yield c


def samples(*clips):
    return [("files", (f"s{i}.wav", wav_bytes(clip))) for i, clip in enumerate(clips)]


@pytest.fixture(scope="module")
def enrolled(api, voices):
    ids = {}
    for name, role in (("Ana", "host"), ("Bo", None)):
        clips = voices[name.lower()][:2]
        data = {"name": name, "metadata": json.dumps({"team": "blue"})} | ({"role": role} if role else {})
        response = api.post("/v1/speakers", headers=auth(), data=data, files=samples(*clips))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["name"] == name and body["n_samples"] == 2 and body["speech_seconds"] > 5
        assert body["metadata"] == {"team": "blue"} and body.get("role") == role
        ids[name] = body["id"]
    return ids


def test_enroll_then_identify(api, voices, enrolled):
    for name, held_out in (("Ana", voices["ana"][3]), ("Bo", voices["bo"][3])):
        response = api.post("/v1/identify", headers=auth(), files={"file": ("q.wav", wav_bytes(held_out))})
        assert response.status_code == 200, response.text
        [speaker] = response.json()["speakers"]
        assert speaker["identity"]["name"] == name and speaker["identity"]["speaker_id"] == enrolled[name]
        best, other = speaker["candidates"]
        assert best["name"] == name and best["matched"] and best["score"] > other["score"] and not other["matched"]
    stranger = api.post("/v1/identify", headers=auth("globex"), files={"file": ("q.wav", wav_bytes(voices["ana"][3]))})
    assert stranger.json()["speakers"][0]["candidates"] == []  # another tenant sees none of acme's speakers


def test_diarize_names_enrolled_speakers(api, voices, enrolled):
    audio, _ = build_conversation([("a", voices["ana"][4]), ("b", voices["bo"][4]), ("a", voices["ana"][5]),
                                   ("b", voices["bo"][5])])
    response = api.post("/v1/diarize", headers=auth(), data={"identify_enrolled": "true"},
                        files={"file": ("talk.wav", wav_bytes(audio))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert all("identity" in s for s in body["speakers"]), body["speakers"]
    names = {s["speaker"]: s["identity"]["name"] for s in body["speakers"]}
    assert sorted(names.values()) == ["Ana", "Bo"]
    assert all(u["identity"]["name"] == names[u["speaker"]] for u in body["utterances"])
    plain = api.post("/v1/diarize", headers=auth(), files={"file": ("talk.wav", wav_bytes(audio))}).json()
    assert all("identity" not in s for s in plain["speakers"])


def test_jobs_link_voices_across_files(api, voices):
    results = []
    for turns in ([("a", voices["ana"][0]), ("b", voices["bo"][0])], [("b", voices["bo"][1]), ("a", voices["ana"][1])]):
        audio, _ = build_conversation(turns)
        job = api.post("/v1/jobs", headers=auth(), files={"file": ("talk.wav", wav_bytes(audio))}).json()
        assert wait_job(api, job["id"])["status"] == "succeeded"
        results.append((job["id"], api.get(f"/v1/jobs/{job['id']}/result", headers=auth()).json()))
    (first_id, first), (second_id, second) = results
    # Ana speaks first in the first file, second in the second: the same voice id either way.
    assert first["speakers"][0]["voice_id"] == second["speakers"][1]["voice_id"]
    assert first["speakers"][1]["voice_id"] == second["speakers"][0]["voice_id"]
    ana = first["speakers"][0]["voice_id"]
    found = api.get(f"/v1/voices/{ana}/appearances", headers=auth()).json()["appearances"]
    assert sorted(a["file_id"] for a in found) == sorted([first_id, second_id])
    assert api.get(f"/v1/voices/{ana}/appearances", headers=auth("globex")).status_code == 404
    assert api.delete(f"/v1/jobs/{second_id}", headers=auth()).status_code == 204
    found = api.get(f"/v1/voices/{ana}/appearances", headers=auth()).json()["appearances"]
    assert [a["file_id"] for a in found] == [first_id]


def test_speaker_crud_and_gates(api, voices, enrolled):
    assert {s["name"] for s in api.get("/v1/speakers", headers=auth()).json()["speakers"]} >= {"Ana", "Bo"}
    assert api.get("/v1/speakers", headers=auth("globex")).json() == {"speakers": []}
    taken = api.post("/v1/speakers", headers=auth(), data={"name": " ana "}, files=samples(voices["bo"][2]))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "speaker_exists"
    silent = api.post("/v1/speakers", headers=auth(), data={"name": "Tone"}, files=samples(tone(4.0)))
    assert silent.status_code == 422 and silent.json()["error"]["code"] == "enrollment_rejected"
    assert "s0.wav" in silent.json()["error"]["message"]
    bad_meta = api.post("/v1/speakers", headers=auth(), data={"name": "X", "metadata": "[1]"},
                        files=samples(voices["bo"][2]))
    assert bad_meta.status_code == 422
    bo = enrolled["Bo"]
    # More files than there are worker and queue slots: one request is one task, never a 429 by itself.
    more = api.post(f"/v1/speakers/{bo}/samples", headers=auth(), files=samples(*voices["bo"][2:6]))
    assert more.status_code == 200, more.text
    assert more.json()["n_samples"] == 6
    wrong = api.post(f"/v1/speakers/{bo}/samples", headers=auth(), files=samples(voices["ana"][2]))
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "enrollment_rejected"
    patched = api.patch(f"/v1/speakers/{bo}", headers=auth(), json={"name": "Bo Li", "role": "guest",
                                                                    "metadata": {"seat": 2}}).json()
    assert (patched["name"], patched["role"], patched["metadata"]) == ("Bo Li", "guest", {"team": "blue", "seat": 2})
    assert api.patch(f"/v1/speakers/{bo}", headers=auth(), json={"name": "Ana"}).status_code == 409
    for method in ("GET", "DELETE"):
        assert api.request(method, f"/v1/speakers/{bo}", headers=auth("globex")).status_code == 404
    assert api.delete(f"/v1/speakers/{bo}", headers=auth()).status_code == 204
    assert api.get(f"/v1/speakers/{bo}", headers=auth()).status_code == 404


def test_speakers_survive_a_restart(settings, api, enrolled):
    before = api.get("/v1/speakers", headers=auth()).json()
    api.__exit__(None, None, None)  # stop the module's app (lifespan shutdown) before reopening its data
    with client(**settings) as again:
        assert again.get("/v1/speakers", headers=auth()).json() == before
