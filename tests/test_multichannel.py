"""Multichannel diarization and channel-based identification.

Real speech: a stereo call, one LibriSpeech reader per channel, each heard in the other channel at -25 dB
(crosstalk bleed). Unit cases: level comparison, identical channels, hints and relabelling with a stub pipeline.
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from pyannote.core import Annotation, Segment

from diarize.audio import from_array
from diarize.config import PipelineConfig
from diarize.errors import IdentificationError
from diarize.identity import IdentificationRequest, identify
from diarize.multichannel import MultichannelDiarizer, bleed_frames, frame_levels, identical_channels, is_bleed
from diarize.pipeline import DiarizationPipeline
from diarize.result import Result, Speaker, Utterance

from .conversations import build_scripted, voiceprint_evidence
from .speech import reader_utterances

AGENT, CUSTOMER = "2033", "1688"
CALL = [
    ("agent", "Thank you for calling Northwind, this is the billing team, how can I help you?"),
    ("customer", "Hi, I'm calling about my internet bill, it is much higher this month."),
    ("agent", "I'm sorry to hear that. Can I have your account number please?"),
    ("customer", "Sure, it's four five seven two nine one, under my husband's name."),
    ("agent", "Thanks. I see a late fee and a price change from last month."),
    ("customer", "Nobody told me about a price change. Can you remove the fee?"),
]


@pytest.fixture(scope="module")
def pipeline() -> DiarizationPipeline:
    return DiarizationPipeline()


@pytest.fixture(scope="module")
def voices(data_dir):
    return {"agent": reader_utterances(data_dir, AGENT, 10), "customer": reader_utterances(data_dir, CUSTOMER, 10)}


@pytest.fixture(scope="module")
def call(voices):
    turns = {s: v[:3] for s, v in voices.items()}
    return build_scripted(CALL, turns, seed=1, channel_of={"agent": 0, "customer": 1}, bleed_db=-25.0)


@pytest.fixture(scope="module")
def call_result(pipeline, call):
    return MultichannelDiarizer(pipeline)(from_array(call.audio, 16000, mono=False))


def channel_annotation(result: Result, channel: int) -> Annotation:
    ann = Annotation()
    for i, u in enumerate(u for u in result.utterances if u.channel == channel):
        ann[Segment(u.start, u.end), i] = u.speaker
    return ann


def test_each_channel_is_one_speaker_labelled_by_channel(call_result):
    assert [(s.label, s.channel) for s in call_result.speakers] == [("1A", 1), ("2A", 2)]
    assert {u.speaker for u in call_result.utterances if u.channel == 1} == {"1A"}
    assert {u.speaker for u in call_result.utterances if u.channel == 2} == {"2A"}
    starts = [u.start for u in call_result.utterances]
    assert starts == sorted(starts)
    data = json.loads(call_result.to_json(include_config=True))
    assert data["speakers"][0]["channel"] == 1 and {u["channel"] for u in data["utterances"]} == {1, 2}
    assert data["config"]["multichannel"]["mode"] == "per channel"
    assert "config" not in json.loads(call_result.to_json())


@pytest.fixture(scope="module")
def raw_channels(pipeline, call):
    """Each channel diarized on its own as plain mono: no bleed gate."""
    return [pipeline(from_array(x, 16000)).to_annotation().get_timeline().support() for x in call.audio]


def test_bleed_neither_duplicates_utterances_nor_misses_speech(call_result, call, raw_channels):
    """Each channel's utterances cover its own party's speech as well as the ungated channel's do, and leave
    out the other party (heard at -25 dB), which the ungated channel's diarization picks up."""
    for channel, party, other in ((1, "agent", "customer"), (2, "customer", "agent")):
        mine = channel_annotation(call_result, channel).get_timeline().support()
        own = call.reference.subset([party]).get_timeline().support()
        theirs = call.reference.subset([other]).get_timeline().support()
        raw = raw_channels[channel - 1]
        assert mine.crop(own).duration() > max(raw.crop(own).duration() - 1.0, 0.7 * own.duration()), channel
        assert mine.crop(theirs).duration() < 0.5, channel
        assert raw.crop(theirs).duration() > 0.5 * theirs.duration(), channel


def test_identical_channels_are_diarized_as_mono(pipeline, call):
    mono = call.audio[0][: 16000 * 8]
    result = MultichannelDiarizer(pipeline)(from_array(np.stack([mono, mono]), 16000, mono=False))
    assert result.config["multichannel"]["mode"].startswith("identical channels")
    assert result.utterances and all(u.channel is None for u in result.utterances)
    assert all(s.channel is None and not s.label[0].isdigit() for s in result.speakers)
    identified = identify(result, IdentificationRequest(channel_roles={1: "Agent", 2: "Customer"}))
    assert all(not s.identity.assigned for s in identified.speakers)
    assert any("channel roles not applied: identical channels" in n for n in identified.identification.notes)


def test_channel_roles_label_whole_channels(call_result):
    request = IdentificationRequest.parse({"channel_roles": {"1": "Agent", "2": "Customer"}})
    result = identify(call_result, request)
    roles = {s.label: s.identity.role for s in result.speakers}
    assert roles == {"1A": "Agent", "2A": "Customer"}
    evidence = result.speaker("1A").identity.evidence[0]
    assert evidence.source == "channel" and evidence.text == "channel 1 is Agent"
    with pytest.raises(IdentificationError, match="channel 3"):
        identify(call_result, IdentificationRequest(channel_roles={3: "Supervisor"}))


def test_enrolled_agent_names_one_reader_and_leaves_the_other_the_customer(call_result, pipeline, voices):
    """Voiceprints only (no channel roles): the enrolled reader is "Agent: Sarah Johnson", the other the Customer."""
    enrolled = {"Sarah Johnson": np.concatenate(voices["agent"][7:10])}
    matches = voiceprint_evidence(pipeline.embedding_backend, enrolled, call_result, roles={"Sarah Johnson": "Agent"})
    request = IdentificationRequest(speaker_type="role", known_values=["Agent", "Customer"])
    result = identify(call_result, request, voiceprints=matches)
    agent, customer = result.speaker("1A").identity, result.speaker("2A").identity
    assert (agent.name, agent.role) == ("Sarah Johnson", "Agent") and agent.confidence > 0.9
    assert agent.evidence[0].source == "voiceprint"
    assert (customer.name, customer.role) == (None, "Customer")
    assert customer.evidence[0].source == "elimination" and "Agent" in customer.evidence[0].text


def test_transcript_of_a_stereo_call_goes_to_the_right_channel(call_result, call):
    request = IdentificationRequest(speaker_type="role", known_values=["Agent", "Customer"], transcript=call.words())
    result = identify(call_result, request)
    said = {c: " ".join(u.text for u in result.utterances if u.channel == c) for c in (1, 2)}
    assert said[1].split() == " ".join(t.text for t in call.turns_of("agent")).split()
    assert said[2].split() == " ".join(t.text for t in call.turns_of("customer")).split()
    assert result.speaker("1A").identity.role == "Agent"
    assert result.speaker("2A").identity.role == "Customer"
    assert {e.source for e in result.speaker("1A").identity.evidence} == {"role_phrase"}


class StubPipeline:
    """Returns fixed per-channel utterances and records the hints it was given."""

    def __init__(self, utterances: list[Utterance]):
        self.config = PipelineConfig()
        self.embedding_backend = SimpleNamespace(model_id="stub")
        self.utterances = utterances
        self.calls: list[tuple] = []

    def __call__(self, audio, num_speakers=None, min_speakers=None, max_speakers=None, progress=None):
        self.calls.append((audio.num_channels, num_speakers, min_speakers, max_speakers))
        labels = sorted({u.speaker for u in self.utterances})
        speakers = [Speaker(l, 1.0, 1, np.ones(2, np.float32)) for l in labels]
        return Result(list(self.utterances), speakers, audio.duration, config={"stub": True}, uri="stub")


def two_channels_first_speaks_then_second() -> np.ndarray:
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    x = (rng.standard_normal((2, 32000)) * 1e-4).astype(np.float32)
    x[0, :16000] += speech
    x[1, :16000] += speech * 10 ** (-25 / 20)
    x[1, 16000:] += speech
    return x


def test_hints_apply_per_channel_and_bleed_utterances_are_dropped():
    """Each channel's utterance where the other channel is 25 dB louder is bleed: dropped; channel 2's "B" is "2A"."""
    stub = StubPipeline([Utterance("A", 0.1, 0.9), Utterance("B", 1.1, 1.9)])
    result = MultichannelDiarizer(stub)(from_array(two_channels_first_speaks_then_second(), 16000, mono=False),
                                        num_speakers=2, max_speakers=None)
    assert stub.calls == [(1, 2, None, None), (1, 2, None, None)]
    assert [(u.speaker, u.start, u.channel) for u in result.utterances] == [("1A", 0.1, 1), ("2A", 1.1, 2)]
    assert [(s.label, s.utterance_count, s.channel) for s in result.speakers] == [("1A", 1, 1), ("2A", 1, 2)]
    assert result.config["multichannel"]["bleed_utterances_dropped"] == 2


def test_identical_channels_detection():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000).astype(np.float32)
    assert identical_channels(np.stack([x, x]))
    assert identical_channels(np.stack([x, 0.5 * x]))
    assert identical_channels(np.zeros((2, 100), np.float32))
    assert not identical_channels(np.stack([x, x + 0.2 * rng.standard_normal(16000).astype(np.float32)]))
    assert not identical_channels(np.stack([x, np.zeros_like(x)]))


def test_bleed_frames_and_utterance_check():
    """Channel 1 speaks, channel 2 hears it 25 dB down: channel 2's frames there are bleed, channel 1's are not."""
    levels = frame_levels(two_channels_first_speaks_then_second(), 16000, 0.02)
    mask = bleed_frames(levels, 12.0, spread=2)
    assert mask[1, :50].all() and not mask[0, :50].any()
    assert not mask[1, 50:].any()
    assert is_bleed(levels, 1, 0, 50, 12.0) and not is_bleed(levels, 0, 0, 50, 12.0)
    assert not is_bleed(levels, 1, 50, 100, 12.0)
