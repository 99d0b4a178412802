"""Multichannel diarization and speaker identification over HTTP, on real speech: a stereo call (one LibriSpeech
reader per channel, each heard in the other at -25 dB), a scripted visit with its word-timed transcript, and an
enrolled agent whose voiceprint is evidence for the identification."""

from __future__ import annotations

import json
import signal

import pytest
from pyannote.core import Annotation, Segment

from .conversations import Conversation, build_scripted
from .servicekit import Server, auth, calibration_file, client, error_of, tone, wav_bytes, wait_job
from .speech import reader_utterances
from .test_cli_identity import CALL
from .test_identity_speech import NO_CUES, SAME_NAME, VISIT

AGENT, CUSTOMER = "2033", "1688"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = {"sync_max_duration": 60.0}
    calibration = calibration_file(tmp_path_factory.mktemp("cal"))
    if calibration:
        settings["voiceprint_calibration"] = calibration
    with client(tmp_path_factory.mktemp("data"), **settings) as c:
        yield c


@pytest.fixture(scope="module")
def agent_voice(data_dir):
    return reader_utterances(data_dir, AGENT, 10)


@pytest.fixture(scope="module")
def call(data_dir, agent_voice) -> Conversation:
    voices = {"agent": agent_voice[:2], "customer": reader_utterances(data_dir, CUSTOMER, 2)}
    return build_scripted(CALL, voices, seed=4, channel_of={"agent": 0, "customer": 1}, bleed_db=-25.0)


@pytest.fixture(scope="module")
def visit(data_dir) -> Conversation:
    voices = {"doctor": reader_utterances(data_dir, "2609", 3), "patient": reader_utterances(data_dir, "367", 3)}
    return build_scripted(VISIT, voices, seed=2)


def stereo(conversation: Conversation) -> bytes:
    return wav_bytes(conversation.audio.T)


def whisper_json(conversation: Conversation) -> dict:
    """The transcript as Whisper writes it with word timestamps: one segment per turn, words with a leading space."""
    words, segments = conversation.words(), []
    for turn in conversation.turns:
        mine, words = words[:len(turn.text.split())], words[len(turn.text.split()):]
        segments.append({"start": mine[0]["start"], "end": mine[-1]["end"], "text": " " + turn.text,
                         "words": [{"word": " " + w["word"], "start": w["start"], "end": w["end"],
                                    "probability": 0.9} for w in mine]})
    return {"text": " ".join(t.text for t in conversation.turns), "segments": segments, "language": "en"}


def label_of(body: dict, conversation: Conversation, speaker: str) -> str:
    """The diarized label that covers most of ``speaker``'s speech in the reference."""
    hypothesis = Annotation()
    for i, u in enumerate(body["utterances"]):
        hypothesis[Segment(u["start"], u["end"]), i] = u["speaker"]
    return hypothesis.crop(conversation.reference.subset([speaker]).get_timeline()).argmax()




CALL_OPTIONS = {"multichannel": "true", "speakers_expected": "1", "channel_roles": '{"1": "Agent", "2": "Customer"}'}


def assert_call_by_role(body: dict, call: Conversation) -> None:
    """Channel 1 holds the agent, 2 the customer: one speaker each, labelled by channel, named by the channel role."""
    assert [(s["speaker"], s["channel"]) for s in body["speakers"]] == [("1A", 1), ("2A", 2)]
    assert {u["channel"] for u in body["utterances"]} == {1, 2}
    assert all(u["speaker"] == f"{u['channel']}A" for u in body["utterances"])
    roles = {s["speaker"]: s["identity"]["role"] for s in body["speakers"]}
    assert roles == {"1A": "Agent", "2A": "Customer"}
    evidence = body["speakers"][0]["identity"]["evidence"]
    assert evidence[0] == {"source": "channel", "weight": 3.0, "text": "channel 1 is Agent"}
    assert all(u["identity"]["role"] == roles[u["speaker"]] and "evidence" not in u["identity"]
               for u in body["utterances"])
    agent_speech = call.reference.subset(["agent"]).get_timeline().support()
    on_one = Annotation()
    for i, u in enumerate(u for u in body["utterances"] if u["channel"] == 1):
        on_one[Segment(u["start"], u["end"]), i] = u["speaker"]
    assert on_one.get_timeline().support().crop(agent_speech).duration() > 0.7 * agent_speech.duration()


def test_stereo_call_with_channel_roles(api, call):
    response = api.post("/v1/diarize", headers=auth(), data=CALL_OPTIONS,
                        files={"file": ("call.wav", stereo(call))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_call_by_role(body, call)
    assert body["identification"] == {"unassigned": [], "notes": []}
    rttm = api.post("/v1/diarize", headers=auth(), data=CALL_OPTIONS, params={"format": "rttm"},
                    files={"file": ("call.wav", stereo(call))})
    assert rttm.status_code == 200 and {line.split()[7] for line in rttm.text.splitlines()} == {"1A", "2A"}


def test_introduction_in_the_transcript_names_the_doctor(api, visit):
    form = {"speaker_identification": json.dumps({"speaker_type": "role", "known_values": ["Doctor", "Patient"]}),
            "transcript": json.dumps(visit.words())}
    response = api.post("/v1/diarize", headers=auth(), data=form, files={"file": ("visit.wav", wav_bytes(visit.audio))})
    assert response.status_code == 200, response.text
    body = response.json()
    doctor, patient = label_of(body, visit, "doctor"), label_of(body, visit, "patient")
    assert doctor != patient
    identities = {s["speaker"]: s["identity"] for s in body["speakers"]}
    assert (identities[doctor]["name"], identities[doctor]["role"]) == ("Dr. Chen", "Doctor")
    assert identities[patient]["role"] == "Patient" and "name" not in identities[patient]
    intro = identities[doctor]["evidence"][0]
    assert intro["source"] == "introduction" and intro["text"].startswith("Good morning, I'm Dr. Chen.")
    assert visit.turns[0].start <= intro["time"] <= visit.turns[0].end
    assert {e["said_by"] for e in identities[doctor]["evidence"] if e["source"] == "addressing"} == {patient}
    said = " ".join(u["text"] for u in body["utterances"] if u["speaker"] == doctor).split()
    assert said == " ".join(t.text for t in visit.turns_of("doctor")).split()
    assert body["identification"]["unassigned"] == []


@pytest.mark.parametrize("texts, request_, reasons, unassigned", [
    (SAME_NAME, {"speaker_type": "name", "known_values": ["Sarah", "Emma"]}, "conflicting evidence: Sarah fits both",
     {"Sarah": "conflicting evidence", "Emma": "no speaker had evidence for it"}),
    (NO_CUES, {"speaker_type": "role", "known_values": ["Agent", "Customer"]},
     "no evidence about this speaker for any of: Agent, Customer",
     {"Agent": "no speaker had evidence for it", "Customer": "no speaker had evidence for it"}),
])
def test_conflicting_or_absent_cues_leave_speakers_unassigned_with_the_reason(api, visit, texts, request_, reasons,
                                                                              unassigned):
    """The transcript goes as a Whisper JSON file part."""
    transcript = json.dumps(whisper_json(visit.retold(texts))).encode()
    response = api.post("/v1/diarize", headers=auth(), data={"speaker_identification": json.dumps(request_)},
                        files={"file": ("visit.wav", wav_bytes(visit.audio)),
                               "transcript": ("whisper.json", transcript, "application/json")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["speakers"]) == 2
    for speaker in body["speakers"]:
        identity = speaker["identity"]
        assert "name" not in identity and "role" not in identity and identity["reason"].startswith(reasons)
    assert all("identity" not in u for u in body["utterances"])
    assert " ".join(u["text"] for u in body["utterances"]).split() == " ".join(texts).split()
    left = body["identification"]["unassigned"]
    assert {i.get("name") or i.get("role"): i["reason"].split(";")[0].split(":")[0] for i in left} == unassigned


def test_options_are_validated_alike_for_jobs_and_the_transcript_is_not_echoed(api):
    audio = wav_bytes(tone(2.0))
    for form, files, message in [
        ({"channel_roles": "1=Agent"}, {}, "channel_roles needs multichannel"),
        ({}, {"transcript": ("t.json", b'{"segments": [{"text": "hi"}]}')}, "segment 0 has no word timings"),
        ({}, {"transcript": ("t.json", b"\xff\xfe{")}, "transcript: not valid JSON"),
    ]:
        response = api.post("/v1/jobs", headers=auth(), data=form, files={"file": ("t.wav", audio), **files})
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["code"] == "invalid_options" and message in error["message"], error
    assert api.get("/v1/jobs", headers=auth()).json()["jobs"] == []
    request_ = {"speaker_type": "role", "known_values": ["Agent", "Customer"]}
    words = json.dumps([{"word": "seven", "start": 0.2, "end": 0.6}]).encode()
    response = api.post("/v1/jobs", headers=auth(),
                        data={"multichannel": "true", "speaker_identification": json.dumps(request_)},
                        files={"file": ("t.wav", audio), "transcript": ("t.json", words)})
    assert response.status_code == 202, response.text
    options = response.json()["options"]
    assert options["multichannel"] is True and options["speaker_identification"]["known_values"] == ["Agent",
                                                                                                     "Customer"]
    assert "transcript" not in options
    job = wait_job(api, response.json()["id"])
    assert job["status"] == "succeeded", job
    body = api.get(job["result_url"], headers=auth()).json()
    assert [u["text"] for u in body["utterances"] if u.get("text")] == ["seven"]
    assert {i["role"] for i in body["identification"]["unassigned"]} == {"Agent", "Customer"}


def test_job_with_multichannel_options_has_the_same_result(api, call):
    response = api.post("/v1/jobs", headers=auth(), data=CALL_OPTIONS, files={"file": ("call.wav", stereo(call))})
    assert response.status_code == 202, response.text
    assert response.json()["options"]["channel_roles"] == {"1": "Agent", "2": "Customer"}
    job = wait_job(api, response.json()["id"])
    assert job["status"] == "succeeded", job
    result = api.get(job["result_url"], headers=auth())
    assert result.status_code == 200
    body = result.json()
    assert_call_by_role(body, call)
    assert all(s["voice_id"] for s in body["speakers"])
    rttm = api.get(job["result_url"], headers=auth(), params={"format": "rttm"}).text
    assert {line.split()[7] for line in rttm.splitlines()} == {"1A", "2A"}


def test_a_killed_server_reruns_a_multichannel_job_with_its_stored_options(tmp_path, call):
    """The options (channels, roles, the transcript the API does not echo) come back from the job database."""
    server = Server(tmp_path).start()
    try:
        with server.http() as http:
            response = http.post("/v1/jobs", headers=auth(), data=CALL_OPTIONS,
                                 files={"file": ("call.wav", stereo(call)), "transcript": ("w.json", json.dumps(
                                     call.words()).encode())})
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            assert http.get(f"/v1/jobs/{job_id}", headers=auth()).json()["status"] in ("queued", "running")
        server.stop(signal.SIGKILL)
        server.start()
        with server.http() as http:
            job = wait_job(http, job_id)
            assert job["status"] == "succeeded", job
            body = http.get(job["result_url"], headers=auth()).json()
    finally:
        server.stop()
    assert_call_by_role(body, call)
    said = " ".join(u["text"] for u in body["utterances"] if u["channel"] == 2).split()
    assert said == " ".join(t.text for t in call.turns_of("customer")).split()


def test_enrolled_agent_is_evidence_and_the_other_party_is_the_customer(api, call, agent_voice):
    pytest.importorskip("qdrant_edge", reason="the embedded voiceprint store needs qdrant-edge-py (service extra)")
    samples = [("files", (f"s{i}.wav", wav_bytes(clip))) for i, clip in enumerate(agent_voice[7:10])]
    enrolled = api.post("/v1/speakers", headers=auth(), data={"name": "Sarah Johnson", "role": "Agent"}, files=samples)
    assert enrolled.status_code == 201, enrolled.text
    form = {"multichannel": "true", "speakers_expected": "1", "identify_enrolled": "true",
            "speaker_identification": json.dumps({"speaker_type": "role", "known_values": ["Agent", "Customer"]})}
    response = api.post("/v1/diarize", headers=auth(), data=form, files={"file": ("call.wav", stereo(call))})
    assert response.status_code == 200, response.text
    identities = {s["speaker"]: s["identity"] for s in response.json()["speakers"]}
    agent, customer = identities["1A"], identities["2A"]
    assert (agent["name"], agent["role"], agent["speaker_id"]) == ("Sarah Johnson", "Agent", enrolled.json()["id"])
    assert agent["evidence"][0]["source"] == "voiceprint" and "Sarah Johnson" in agent["evidence"][0]["text"]
    assert agent["confidence"] > 0.8 and agent["score"] > 0.5
    assert (customer.get("name"), customer["role"]) == (None, "Customer") and "speaker_id" not in customer
    assert customer["evidence"][0]["source"] == "elimination" and "Agent" in customer["evidence"][0]["text"]
    alone = api.post("/v1/diarize", headers=auth(), data={"multichannel": "true", "speakers_expected": "1",
                                                         "identify_enrolled": "true"},
                     files={"file": ("call.wav", stereo(call))}).json()
    named = {s["speaker"]: s.get("identity") for s in alone["speakers"]}
    assert named["2A"] is None and "identification" not in alone
    assert (named["1A"]["name"], named["1A"]["evidence"][0]["source"]) == ("Sarah Johnson", "voiceprint")
