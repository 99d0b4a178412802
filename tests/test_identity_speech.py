"""Identification on real speech: LibriSpeech voices diarized by the pipeline, with word-timed transcripts written
for the scripted conversations (each turn's words spread over that turn's speech)."""

import pytest

from diarize.audio import from_array
from diarize.identity import IdentificationRequest, identify
from diarize.pipeline import DiarizationPipeline
from diarize.result import Result

from .conversations import Conversation, build_scripted
from .speech import reader_utterances

VISIT = [
    ("doctor", "Good morning, I'm Dr. Chen. What brings you in to see me today?"),
    ("patient", "Morning, Doctor. I've been having bad headaches for about two weeks now."),
    ("doctor", "I see. How long do they last, and are you taking anything for them?"),
    ("patient", "A few hours each time. I take ibuprofen, but it barely helps at all."),
    ("doctor", "Okay. I'd like to order some blood work and check your blood pressure."),
    ("patient", "That sounds good. Thank you, Dr. Chen, I appreciate it very much."),
]
SAME_NAME = [  # both introduce themselves as Sarah: the cues conflict
    "Hello there, I'm Sarah, I think we spoke on the phone last week about the flat.",
    "Oh hi, funny, I'm Sarah too. Yes, I'm still interested in seeing the flat.",
    "Great. It has two bedrooms and a small garden at the back of the building.",
    "Lovely. Is it close to the station? I commute into town most days now.",
    "About ten minutes on foot. The rent includes water and the heating too.",
    "That sounds fine. Could I come and see it on Saturday morning, around ten?",
]
NO_CUES = [  # nothing says who is who
    "It's been raining all week, hasn't it? The garden is completely soaked now.",
    "Yes, and the forecast says more rain tomorrow, probably until Sunday night.",
    "At least the reservoirs will be full. Last summer was so dry around here.",
    "True. The river was very low in August, I remember seeing the old stones.",
    "We should walk along it again when the weather is better in the spring.",
    "Good idea. Let's plan for April, when the days are longer and warmer.",
]
MEETING = [
    ("anna", "Good morning everyone, my name is Anna and I'll be running the review today."),
    ("peter", "Thanks Anna. The first draft of the budget is ready, I sent it round last night."),
    ("anna", "Great. Maria, did you have a chance to look at the staffing numbers yet?"),
    ("maria", "I did. They look right to me, but the contractor costs seem a little high."),
    ("peter", "That's fair, Maria. I can revise the contractor line by Friday afternoon."),
    ("maria", "Perfect, thank you Peter. Then I'm happy to sign it off next week."),
]


@pytest.fixture(scope="module")
def pipeline() -> DiarizationPipeline:
    return DiarizationPipeline()


@pytest.fixture(scope="module")
def visit(data_dir) -> Conversation:
    voices = {"doctor": reader_utterances(data_dir, "2609", 3), "patient": reader_utterances(data_dir, "367", 3)}
    return build_scripted(VISIT, voices, seed=2)


@pytest.fixture(scope="module")
def visit_result(pipeline, visit) -> Result:
    result = pipeline(from_array(visit.audio, 16000))
    assert result.num_speakers == 2
    return result


def label_of(result: Result, conversation: Conversation, speaker: str) -> str:
    """The diarized label that covers most of ``speaker``'s speech in the reference."""
    hypothesis = result.to_annotation()
    own = conversation.reference.subset([speaker]).get_timeline()
    return hypothesis.crop(own).argmax()


def test_introduction_and_addressing_name_the_doctor(visit_result, visit):
    request = IdentificationRequest(speaker_type="role", known_values=["Doctor", "Patient"], transcript=visit.words())
    result = identify(visit_result, request)
    doctor, patient = label_of(result, visit, "doctor"), label_of(result, visit, "patient")
    assert doctor != patient
    assert (result.speaker(doctor).identity.name, result.speaker(doctor).identity.role) == ("Dr. Chen", "Doctor")
    assert result.speaker(patient).identity.role == "Patient"
    intro = result.speaker(doctor).identity.evidence[0]
    first_turn = visit.turns[0]
    assert intro.source == "introduction" and intro.text.startswith("Good morning, I'm Dr. Chen.")
    assert first_turn.start <= intro.time <= first_turn.end
    addressed = [e for e in result.speaker(doctor).identity.evidence if e.source == "addressing"]
    assert {e.said_by for e in addressed} == {patient} and len(addressed) == 2
    # The transcript comes back attributed: each speaker's utterances hold that speaker's words.
    doctor_words = " ".join(u.text for u in result.utterances if u.speaker == doctor).split()
    assert doctor_words == " ".join(t.text for t in visit.turns_of("doctor")).split()


def test_conflicting_introductions_leave_both_unassigned(visit_result, visit):
    retold = visit.retold(SAME_NAME)
    request = IdentificationRequest(speaker_type="name", known_values=["Sarah", "Emma"], transcript=retold.words())
    result = identify(visit_result, request)
    for speaker in result.speakers:
        assert not speaker.identity.assigned
        assert speaker.identity.reason.startswith("conflicting evidence: Sarah fits both")
    assert {i.name: i.reason.split(":")[0] for i in result.identification.unassigned} == {
        "Sarah": "conflicting evidence", "Emma": "no speaker had evidence for it"}


def test_absent_cues_leave_labels_unassigned_with_the_reason(visit_result, visit):
    retold = visit.retold(NO_CUES)
    request = IdentificationRequest(speaker_type="role", known_values=["Agent", "Customer"], transcript=retold.words())
    result = identify(visit_result, request)
    assert [s.identity.reason for s in result.speakers] == [
        "no evidence about this speaker for any of: Agent, Customer"] * 2
    assert all(s.identity.role is None and s.identity.name is None for s in result.speakers)


def test_names_in_a_three_person_meeting(pipeline, data_dir):
    voices = {"anna": reader_utterances(data_dir, "1688", 2), "peter": reader_utterances(data_dir, "2033", 2),
              "maria": reader_utterances(data_dir, "3080", 4)[2:]}
    meeting = build_scripted(MEETING, voices, seed=3)
    diarized = pipeline(from_array(meeting.audio, 16000), num_speakers=3)
    request = IdentificationRequest(speaker_type="name", known_values=["Anna", "Peter", "Maria"],
                                    transcript=meeting.words())
    result = identify(diarized, request)
    for person in ("anna", "peter", "maria"):
        identity = result.speaker(label_of(result, meeting, person)).identity
        assert identity.name == person.capitalize(), (person, identity)
    anna = result.speaker(label_of(result, meeting, "anna")).identity.evidence
    assert anna[0].source == "introduction" and "my name is Anna" in anna[0].text
