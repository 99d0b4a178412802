"""Identification from context: cues in transcripts, voiceprints and priors combined into one explained assignment.

These cases use hand-built diarization results (each scripted turn one utterance, words evenly timed); the
same cues on real speech are tested in test_identity_speech.py.
"""

import json
from types import SimpleNamespace

import pytest

from diarize.config import IdentificationConfig
from diarize.errors import IdentificationError
from diarize.identity import IdentificationRequest, VoiceprintEvidence, identify, parse_channel_roles, parse_values
from diarize.result import Result, Speaker, Utterance
from diarize.voiceprints.identification import SpeakerMatch


def scripted(turns: list[tuple[str, str]], **request) -> Result:
    """Identify a result whose utterances are ``turns`` (label, text), words 0.38 s apart, turns 0.7 s apart."""
    words, utterances, t = [], [], 0.5
    for label, text in turns:
        first = t
        for token in text.split():
            words.append({"word": token, "start": round(t, 3), "end": round(t + 0.34, 3)})
            t += 0.38
        utterances.append(Utterance(label, round(first - 0.1, 3), round(t, 3)))
        t += 0.7
    speakers = [Speaker(label, 1.0, 1) for label in sorted({label for label, _ in turns})]
    result = Result(utterances, speakers, t + 1.0)
    return identify(result, IdentificationRequest.parse({**request, "transcript": words}))


def who(result: Result) -> dict[str, tuple]:
    return {s.label: (s.identity.name, s.identity.role) for s in result.speakers}


DOCTOR_VISIT = [
    ("A", "Hi, I'm Dr. Chen. What brings you in today?"),
    ("B", "Hi Doctor. I've been having headaches for about two weeks now."),
    ("A", "How often do they come, and do you take anything for them?"),
    ("B", "Almost every day. I take ibuprofen but it barely helps."),
]


def test_self_introduction_names_the_speaker_and_says_when():
    result = scripted(DOCTOR_VISIT, speaker_type="role", known_values=["Doctor", "Patient"])
    assert who(result) == {"A": ("Dr. Chen", "Doctor"), "B": (None, "Patient")}
    intro = result.speaker("A").identity.evidence[0]
    assert (intro.source, intro.text, intro.time, intro.said_by) == ("introduction", "Hi, I'm Dr. Chen.", 0.88, "A")
    addressed = [e for e in result.speaker("A").identity.evidence if e.source == "addressing"]
    assert addressed and addressed[0].said_by == "B" and addressed[0].text.startswith("Hi Doctor.")
    assert result.speaker("A").identity.confidence > 0.95
    data = json.loads(result.to_json())
    assert data["speakers"][0]["identity"]["evidence"][0] == {
        "source": "introduction", "weight": 3.0, "text": "Hi, I'm Dr. Chen.", "time": 0.88, "said_by": "A"}
    again = Result.from_dict(data).to_dict()
    assert again["speakers"] == data["speakers"] and again["identification"] == data["identification"]


def test_names_from_introductions_and_addressing():
    meeting = [
        ("A", "Good morning everyone, my name is Anna and I will run today's meeting. Peter, what do you think?"),
        ("B", "I think the budget looks fine, thanks Anna."),
        ("C", "Maria here, I agree with Peter on that."),
        ("A", "Great, let's move on."),
    ]
    result = scripted(meeting, speaker_type="name", known_values=["Peter", "Anna", "Maria"])
    assert who(result) == {"A": ("Anna", None), "B": ("Peter", None), "C": ("Maria", None)}
    peter = result.speaker("B").identity.evidence
    assert peter[0].source == "addressing" and peter[0].said_by == "A" and "Peter, what do you think?" in peter[0].text
    # Being called Anna by B counts for A, and saying "thanks Anna" counts against B being Anna.
    anna = {e.source for e in result.speaker("A").identity.evidence}
    assert anna == {"introduction", "addressing"}


def test_role_phrases_decide_agent_and_customer_and_the_agent_is_named():
    call = [
        ("A", "Thank you for calling Acme, this is Sarah, how can I help you today?"),
        ("B", "Hi Sarah, I'm calling about my internet bill, it doubled this month."),
        ("A", "I'm sorry to hear that. Can I have your account number please?"),
    ]
    result = scripted(call, speaker_type="role", known_values=["Agent", "Customer"])
    assert who(result) == {"A": ("Sarah", "Agent"), "B": (None, "Customer")}
    sources = [e.source for e in result.speaker("A").identity.evidence]
    assert "role_phrase" in sources and "introduction" in sources
    assert all(e.source == "role_phrase" for e in result.speaker("B").identity.evidence)


def test_the_speaker_asking_most_questions_is_the_interviewer():
    interview = [
        ("A", "Thanks for coming in. Could you start with your background?"),
        ("B", "Sure. I studied chemistry and then moved into data work."),
        ("A", "What drew you to data work? And what did you build there?"),
        ("B", "Mostly dashboards and a forecasting model for sales."),
        ("A", "How did you validate the model?"),
        ("B", "Against the last two years of actual sales."),
    ]
    result = scripted(interview, speaker_type="role", known_values=["Interviewer", "Candidate"])
    assert who(result) == {"A": (None, "Interviewer"), "B": (None, "Candidate")}
    assert result.speaker("A").identity.evidence[0].text == "asked 4 of the 4 questions"
    assert result.speaker("B").identity.evidence[0].source == "elimination"


def test_host_opens_and_closes_and_the_guest_thanks_for_being_had():
    show = [
        ("A", "Welcome back to the show. My guest today is a chef."),
        ("B", "Thanks for having me, it's great to be here."),
        ("A", "So tell me how it started."),
        ("B", "At my grandmother's restaurant, washing dishes."),
        ("A", "That's all for today, thanks for listening."),
    ]
    result = scripted(show, speaker_type="role", known_values=["Host", "Guest"])
    assert who(result) == {"A": (None, "Host"), "B": (None, "Guest")}
    assert "opens_closes" in {e.source for e in result.speaker("A").identity.evidence}


def test_conflicting_introductions_leave_both_unassigned_with_the_reason():
    twins = [("A", "Hello, I'm Sarah."), ("B", "Oh hi, I'm Sarah too, what a coincidence."), ("A", "Nice to meet you.")]
    result = scripted(twins, speaker_type="name", known_values=["Sarah", "Tom"])
    for label in "AB":
        identity = result.speaker(label).identity
        assert not identity.assigned and identity.confidence == 0.0
        assert identity.reason == "conflicting evidence: Sarah fits both A (3.00) and B (3.00)"
        assert identity.evidence[0].source == "introduction"
    left = {i.name: i.reason for i in result.identification.unassigned}
    assert left == {"Sarah": "conflicting evidence: Sarah fits both A (3.00) and B (3.00)",
                    "Tom": "no speaker had evidence for it"}


SMALL_TALK = [("A", "Nice weather today, isn't it?"), ("B", "Yes, very sunny, I went for a walk."),
              ("A", "Me too, it was lovely.")]


def test_no_cues_leave_speakers_unassigned_rather_than_guessed():
    result = scripted(SMALL_TALK, speaker_type="role", known_values=["Agent", "Customer"])
    for s in result.speakers:
        assert not s.identity.assigned
        assert s.identity.reason == "no evidence about this speaker for any of: Agent, Customer"
    assert [i.reason for i in result.identification.unassigned] == ["no speaker had evidence for it"] * 2


def test_weak_priors_only_when_asked_and_marked_as_such():
    result = scripted(SMALL_TALK, speaker_type="role", known_values=["Agent", "Customer"], use_priors=True)
    assert who(result) == {"A": (None, "Agent"), "B": (None, "Customer")}
    prior = result.speaker("A").identity
    assert prior.evidence[0].source == "prior" and "weak prior" in prior.evidence[0].text
    assert prior.confidence < 0.7 and result.speaker("B").identity.confidence < prior.confidence
    assert any("weak prior" in n for n in result.identification.notes)
    outbound = scripted(SMALL_TALK, speaker_type="role", known_values=["Agent", "Customer"], use_priors=True,
                        call_direction="outbound")
    assert who(outbound) == {"A": (None, "Customer"), "B": (None, "Agent")}


def test_priors_do_not_override_evidence():
    call = [("A", "Hello?"), ("B", "Hi, this is Mark calling from BrightPower about your plan. I can help you save."),
            ("A", "Oh, okay.")]
    result = scripted(call, speaker_type="role", known_values=["Agent", "Customer"], use_priors=True)
    assert who(result) == {"A": (None, "Customer"), "B": ("Mark", "Agent")}
    assert not any(e.source == "prior" for s in result.speakers for e in s.identity.evidence)


def test_weak_evidence_is_reported_not_used():
    config = IdentificationConfig(min_score=2.0)
    words = [{"word": w, "start": i * 0.4, "end": i * 0.4 + 0.3} for i, w in enumerate("how can I help".split())]
    result = Result([Utterance("A", 0.0, 2.0)], [Speaker("A", 2.0, 1)], 3.0)
    request = IdentificationRequest(speaker_type="role", known_values=["Agent"], transcript=words)
    identity = identify(result, request, config=config).speaker("A").identity
    assert not identity.assigned and identity.reason == "evidence too weak: Agent scores 1.25, needs 2.00"


def test_each_identity_once_unless_repeats_are_allowed():
    call = [("A", "Thanks for calling, how can I help?"), ("B", "I'm calling about my bill."),
            ("C", "And I'm calling about my order too.")]
    once = scripted(call, speaker_type="role", known_values=["Agent", "Customer"])
    assert who(once)["A"] == (None, "Agent")
    assert not once.speaker("B").identity.assigned and "conflicting evidence" in once.speaker("B").identity.reason
    repeated = scripted(call, speaker_type="role", known_values=["Agent", "Customer"], allow_repeats=True)
    assert who(repeated) == {"A": (None, "Agent"), "B": (None, "Customer"), "C": (None, "Customer")}


def test_open_set_names_from_introductions():
    talk = [("A", "Hello, my name is Priya Patel and I'm with the city council."), ("B", "Nice to meet you, Priya.")]
    result = scripted(talk, speaker_type="name")
    assert who(result)["A"] == ("Priya Patel", None)
    assert not result.speaker("B").identity.assigned
    assert result.identification.unassigned == []  # nothing was requested by name


def voice_only(label_names: dict[str, tuple], request: IdentificationRequest, matches) -> Result:
    speakers = [Speaker(label, 5.0, 2) for label in label_names]
    utterances = [Utterance(label, i * 3.0, i * 3.0 + 2.0) for i, label in enumerate(label_names)]
    return identify(Result(utterances, speakers, 10.0), request, voiceprints=matches)


def test_voiceprint_matches_plug_in_from_the_store():
    """The voiceprint store's matches (or anything with label, name, role, score, confidence) are accepted."""
    store_match = SpeakerMatch("A", "Sarah Johnson", "spk-1", "Agent", 0.83, 0.97)
    no_match = SimpleNamespace(label="B", name=None, speaker_id=None, role=None, score=0.41, confidence=0.02)
    request = IdentificationRequest(speaker_type="role", known_values=["Agent", "Customer"])
    result = voice_only({"A": (), "B": ()}, request, [store_match, no_match])
    assert who(result) == {"A": ("Sarah Johnson", "Agent"), "B": (None, "Customer")}
    evidence = result.speaker("A").identity.evidence[0]
    assert evidence.source == "voiceprint" and evidence.text == (
        "voice matches enrolled Agent: Sarah Johnson (score 0.83, confidence 0.97)")
    # Without a request the enrolled identity itself is what the speaker is called.
    bare = voice_only({"A": (), "B": ()}, IdentificationRequest(), [store_match])
    assert who(bare) == {"A": ("Sarah Johnson", "Agent"), "B": (None, None)}
    with pytest.raises(IdentificationError, match="'Z'"):
        voice_only({"A": ()}, request, [VoiceprintEvidence("Z", "Sarah Johnson", "Agent", 0.9, 0.99)])


def test_a_low_confidence_voiceprint_counts_against():
    request = IdentificationRequest(speakers=[{"name": "Sarah Johnson", "role": "Agent"}, {"role": "Customer"}])
    weak = VoiceprintEvidence("A", "Sarah Johnson", "Agent", 0.55, 0.1)
    result = voice_only({"A": ()}, request, [weak])
    identity = result.speaker("A").identity
    assert not identity.assigned and identity.reason == "only evidence against the requested identities"


def test_speaker_profiles_carry_their_metadata():
    call = [("A", "Thank you for calling, how can I help?"), ("B", "I'm calling about my order.")]
    profiles = [{"name": "Sarah Johnson", "description": "customer support representative", "employee_id": 42},
                {"role": "Customer"}]
    result = scripted(call, speakers=profiles)
    identity = result.speaker("A").identity
    assert (identity.name, identity.role) == ("Sarah Johnson", None)
    assert identity.metadata == {"employee_id": 42, "description": "customer support representative"}


@pytest.mark.parametrize("data, message", [
    ({"known_values": ["Agent"]}, "known_values need speaker_type"),
    ({"speaker_type": "role", "known_values": ["Agent", "agent"]}, "repeat"),
    ({"speaker_type": "job", "known_values": ["Agent"]}, "speaker_type"),
    ({"channel_roles": {"0": "Agent"}}, "numbered from 1"),
    ({"channel_roles": {"one": "Agent"}}, "channel_roles"),
    ({"speakers": [{"description": "someone"}]}, "'name' or a 'role'"),
    ({"speakers": [{"name": "Ann"}, {"name": "ann"}]}, "listed twice"),
    ({"speaker_typo": "role"}, "speaker_typo"),
])
def test_bad_requests_are_one_typed_error(data, message):
    with pytest.raises(IdentificationError, match=message):
        request = IdentificationRequest.parse(data)
        identify(Result([], [], 1.0), request)


def test_cli_style_values():
    assert parse_values("Agent, Customer") == ("Agent", "Customer")
    assert parse_channel_roles("1=Agent,2=Customer") == {1: "Agent", 2: "Customer"}
    for bad in ("1=Agent,1=Customer", "Agent", "0=Agent", "1="):
        with pytest.raises(IdentificationError):
            parse_channel_roles(bad)
    with pytest.raises(IdentificationError):
        parse_values("Agent,,Customer")


def test_role_introductions_and_company_names():
    show = [("A", "Good evening, I'll be your host tonight."), ("B", "Hello, glad to be on the show.")]
    assert who(scripted(show, speaker_type="role", known_values=["Host", "Guest"])) == {
        "A": (None, "Host"), "B": (None, "Guest")}
    call = [("A", "Thank you for calling, this is Acme Bank, how can I help?"), ("B", "Hello, I have a question.")]
    result = scripted(call, speaker_type="role", known_values=["Agent", "Customer"])
    assert who(result)["A"] == (None, "Agent")  # a company introduced, not a person's name
