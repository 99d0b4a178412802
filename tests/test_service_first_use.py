"""The HTTP API as a new user meets it: unknown fields refused with what to send instead, warnings that explain
an empty or surprising result, the library's JSON document, caption exports, and FastAPI's pages in metrics."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from .servicekit import auth, client, error_of, wait_job, wav_bytes
from .speech import two_reader_conversation


@pytest.fixture(scope="module")
def conversation(data_dir) -> bytes:
    audio = two_reader_conversation(data_dir)
    return wav_bytes(audio)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with client(tmp_path_factory.mktemp("data")) as c:
        yield c


SILENCE = wav_bytes(np.random.default_rng(0).normal(0, 1e-4, 16000 * 4).astype(np.float32))


@pytest.mark.parametrize("field, value, hint", [
    ("num_speakers", "1", "speakers_expected=N"),
    ("min_speakers", "2", '"min_speakers_expected": N'),
    ("max_speakers", "4", '"max_speakers_expected": N'),
    ("audio_url", "https://example.com/a.wav", "does not fetch URLs"),
    ("speakers_expectd", "2", "did you mean speakers_expected?"),
])
def test_unknown_form_fields_are_422_naming_the_field(api, field, value, hint):
    for route in ("/v1/diarize", "/v1/jobs"):
        response = api.post(route, headers=auth(), data={field: value}, files={"file": ("s.wav", SILENCE)})
        assert response.status_code == 422, (route, response.text)
        error = error_of(response)
        assert error["code"] == "unknown_field" and error["message"].startswith(f"{field}: unknown field")
        assert hint in error["message"]


def test_unknown_json_fields_are_422_too(api):
    response = api.post("/v1/diarize", headers=auth(), json={"audio_url": "https://example.com/a.wav"})
    assert response.status_code == 422 and error_of(response)["message"].startswith("audio_url: unknown field")
    response = api.post("/v1/diarize", headers=auth(), data={"speaker_options": '{"min_speakers": 2}'},
                        files={"file": ("s.wav", SILENCE)})
    error = error_of(response)
    assert response.status_code == 422 and error["code"] == "invalid_options"
    assert error["message"] == "speaker_options.min_speakers: unknown field; did you mean min_speakers_expected?"
    response = api.post("/v1/speakers", headers=auth(), data={"name": "Sarah", "speaker_name": "Sarah"},
                        files={"files": ("s.wav", SILENCE)})
    assert response.status_code == 422 and error_of(response)["message"].startswith("speaker_name: unknown field")


def test_silence_is_200_with_a_no_speech_warning(api):
    response = api.post("/v1/diarize", headers=auth(), files={"file": ("silence.wav", SILENCE)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["utterances"] == [] and body["warnings"] == ["no speech found in 4.00 s of audio"]


def test_the_answer_is_the_librarys_document(api, conversation):
    from diarize.result import Result

    response = api.post("/v1/diarize", headers=auth(), data={"speakers_expected": "3"},
                        files={"file": ("talk.wav", conversation)})
    assert response.status_code == 200, response.text
    body = response.json()
    again = Result.from_dict(body).to_dict()
    assert body == again  # the same keys and values as the CLI's JSON of this result
    assert body["uri"] == "talk" and "config" not in body


def test_caption_formats(api, conversation):
    srt = api.post("/v1/diarize?format=srt", headers=auth(), files={"file": ("talk.wav", conversation)})
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    blocks = srt.text.strip().split("\n\n")
    assert {b.split("\n")[2] for b in blocks} == {"A", "B"}
    assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", blocks[0].split("\n")[1])
    vtt = api.post("/v1/diarize?format=vtt", headers=auth(), files={"file": ("talk.wav", conversation)})
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
    words = [{"word": "hello", "start": 0.5, "end": 0.9}]
    txt = api.post("/v1/diarize?format=txt", headers=auth(), data={"transcript": json.dumps(words)},
                   files={"file": ("talk.wav", conversation)})
    assert txt.status_code == 200, txt.text
    assert txt.text.splitlines()[0] == "A: hello"


def test_a_jobs_result_as_captions_names_identified_speakers(api, conversation):
    words = [{"word": w, "start": 0.5 + 0.3 * i, "end": 0.75 + 0.3 * i} for i, w in enumerate("Hi, I'm Alice.".split())]
    job = api.post("/v1/jobs", headers=auth(), data={"transcript": json.dumps(words)},
                   files={"file": ("talk.wav", conversation)}).json()
    assert wait_job(api, job["id"])["status"] == "succeeded"
    stored = api.get(f"/v1/jobs/{job['id']}/result", headers=auth()).json()
    assert stored["warnings"] == [] and stored["uri"] == "talk"
    txt = api.get(f"/v1/jobs/{job['id']}/result?format=txt", headers=auth())
    assert txt.status_code == 200 and txt.text.splitlines()[0] == "Alice: Hi, I'm Alice."


def test_fastapi_pages_are_labelled_by_route_in_metrics(api):
    assert api.get("/docs").status_code == 200 and api.get("/openapi.json").status_code == 200
    text = api.get("/metrics").text
    assert 'route="/docs",status="200"' in text and 'route="/openapi.json",status="200"' in text
