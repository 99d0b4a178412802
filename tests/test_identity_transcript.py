"""Transcripts: reading word lists and Whisper JSON, and giving every word to a diarized speaker."""

import json

import numpy as np
import pytest

from diarize.errors import IdentificationError, TranscriptError
from diarize.identity import (
    IdentificationRequest,
    attach_transcript,
    attribute_words,
    identify,
    load_transcript,
    parse_transcript,
)
from diarize.identity.transcript import Word, interval_tracks
from diarize.result import UNKNOWN, Utterance

WHISPER = {
    "text": " Hello, this is Sarah. How can I help?",
    "segments": [
        {"id": 0, "start": 0.0, "end": 1.9, "text": " Hello, this is Sarah.",
         "words": [{"word": " Hello,", "start": 0.0, "end": 0.42, "probability": 0.93},
                   {"word": " this", "start": 0.5, "end": 0.7, "probability": 0.99},
                   {"word": " is", "start": 0.7, "end": 0.82, "probability": 0.99},
                   {"word": " Sarah.", "start": 0.82, "end": 1.3, "probability": 0.88}]},
        {"id": 1, "start": 2.0, "end": 3.1, "text": " How can I help?",
         "words": [{"word": " How", "start": 2.0, "end": 2.2}, {"word": " can", "start": 2.2, "end": 2.4},
                   {"word": " I", "start": 2.4, "end": 2.5}, {"word": " help?", "start": 2.5, "end": 3.1}]},
    ],
    "language": "en",
}


def test_reads_whisper_faster_whisper_and_word_lists(tmp_path):
    words = parse_transcript(WHISPER)
    assert [w.text for w in words] == ["Hello,", "this", "is", "Sarah.", "How", "can", "I", "help?"]
    assert words[3] == Word("Sarah.", 0.82, 1.3, 0.88)
    assert parse_transcript(WHISPER["segments"]) == words  # faster-whisper segments dumped as a list
    flat = [{"word": w.text, "start": w.start, "end": w.end} for w in reversed(words)]
    assert [w.text for w in parse_transcript(flat)] == [w.text for w in words]  # sorted by time
    assert [w.text for w in parse_transcript({"words": flat})] == [w.text for w in words]
    path = tmp_path / "words.json"
    path.write_text(json.dumps(WHISPER))
    assert load_transcript(path) == words


def test_whisperx_words_without_times_sit_between_their_neighbours():
    segments = [{"start": 1.0, "end": 3.0, "words": [
        {"word": "I", "start": 1.0, "end": 1.2, "score": 0.9}, {"word": "paid", "start": 1.3, "end": 1.6},
        {"word": "$20"}, {"word": "today", "start": 2.4, "end": 2.9}]}]
    words = parse_transcript({"segments": segments, "word_segments": []})
    assert [(w.text, w.start, w.end) for w in words][2] == ("$20", 1.6, 2.4)
    assert words[0].probability == 0.9


@pytest.mark.parametrize("data, message", [
    ({"segments": [{"start": 0, "end": 1, "text": "hi"}]}, "word_timestamps=True"),
    ([{"word": "hi", "start": "0", "end": 1}], "'start' must be a number"),
    ([{"word": "hi", "start": 2.0, "end": 1.0}], "start <= end"),
    ([{"word": "hi", "start": float("nan"), "end": 1.0}], "'start'"),
    ([{"word": 3, "start": 0, "end": 1}], "'word' must be a string"),
    ([{"word": "hi", "start": 0, "end": 1, "channel": 0}], "channel"),
    ("hello", "expected a JSON list or object"),
    ({"text": "hello"}, "word list or Whisper JSON"),
])
def test_bad_transcripts_are_typed_errors(data, message):
    with pytest.raises(TranscriptError, match=message):
        parse_transcript(data)


def test_bad_transcript_file_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(TranscriptError, match="bad.json"):
        load_transcript(path)
    with pytest.raises(TranscriptError, match="not found"):
        load_transcript(tmp_path / "missing.json")
    with pytest.raises(IdentificationError, match="transcript"):
        IdentificationRequest.parse({"transcript": [{"word": "hi"}]})


def brute_force(ws, we, starts, ends, max_gap):
    out = []
    for a, b in zip(ws, np.maximum(we, ws + 1e-6)):
        overlap = np.minimum(ends, b) - np.maximum(starts, a)
        if len(overlap) and overlap.max() > 0:
            out.append(overlap.max())
            continue
        gap = np.where(ends <= a, a - ends, starts - b) if len(starts) else np.array([np.inf])
        out.append(-gap.min() if gap.min() <= max_gap else None)
    return out


def test_attribution_matches_brute_force_on_overlapping_intervals():
    """Each word gets the interval it overlaps most (else the nearest within the gap): same quality as brute force."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        starts = np.sort(rng.uniform(0, 60, rng.integers(0, 25)))
        ends = starts + rng.uniform(0.05, 8, len(starts))
        ws = rng.uniform(0, 70, rng.integers(1, 60))
        we = ws + rng.uniform(0, 1.5, len(ws))
        got = attribute_words(ws, we, starts, ends, 1.0)
        for i, expected in enumerate(brute_force(ws, we, starts, ends, 1.0)):
            j = got[i]
            if expected is None:
                assert j == -1
                continue
            assert j >= 0
            b = max(we[i], ws[i] + 1e-6)
            overlap = min(ends[j], b) - max(starts[j], ws[i])
            quality = overlap if overlap > 0 else -max(ws[i] - ends[j], starts[j] - b)
            assert quality == pytest.approx(expected)


def test_interval_tracks_never_overlap():
    rng = np.random.default_rng(3)
    starts = rng.uniform(0, 100, 300)
    ends = starts + rng.uniform(0, 10, 300)
    tracks = interval_tracks(starts, ends)
    assert sorted(np.concatenate(tracks).tolist()) == list(range(300))
    for t in tracks:
        assert np.all(starts[t][1:] >= ends[t][:-1])


def test_attached_transcript_gives_utterances_text_and_keeps_far_words_unknown():
    utterances = [Utterance("A", 0.0, 2.0, channel=1), Utterance("B", 2.5, 4.0, channel=2),
                  Utterance("A", 1.5, 3.0, channel=1)]
    words = [Word("hello", 0.1, 0.4), Word("there", 2.8, 3.1), Word("again", 2.95, 3.2, channel=1),
             Word("you", 4.3, 4.5), Word("lost", 9.0, 9.3), Word("words", 9.4, 9.6)]
    out = attach_transcript(utterances, words, max_gap=1.0)
    assert [(u.speaker, u.text) for u in out.utterances] == [
        ("A", "hello"), ("A", "again"), ("B", "there you"), (UNKNOWN, "lost words")]
    assert out.unattributed == 2
    assert out.utterances[-1].start == 9.0 and out.utterances[-1].end == 9.6
    assert [len(w) for w in out.words] == [1, 1, 2, 2]


def test_word_assignment_of_100k_words_to_5k_utterances_is_well_under_a_second():
    from benchmarks.word_assignment import check_against_brute_force, measure

    timing = measure(100_000, 5_000, repeats=1)
    assert timing.sweep_s < 0.25 and timing.attach_s < 1.0, timing
    assert check_against_brute_force(sample=500)


def test_an_utterance_cut_inside_a_phrase_is_joined_and_a_finished_sentence_is_not():
    utterances = [Utterance("A", 0.0, 1.4), Utterance("A", 1.6, 3.0), Utterance("A", 3.2, 4.0),
                  Utterance("B", 4.5, 6.0)]
    words = [Word("Thanks", 0.1, 0.4), Word("Alice,", 0.5, 0.9), Word("my", 1.0, 1.3), Word("name", 1.7, 2.0),
             Word("is", 2.1, 2.3), Word("Bob.", 2.4, 2.8), Word("Shall", 3.3, 3.5), Word("we?", 3.6, 3.9),
             Word("Sure.", 4.6, 5.0)]
    out = attach_transcript(utterances, words, max_gap=1.0)
    assert [(u.speaker, u.start, u.end, u.text) for u in out.utterances] == [
        ("A", 0.0, 3.0, "Thanks Alice, my name is Bob."), ("A", 3.2, 4.0, "Shall we?"), ("B", 4.5, 6.0, "Sure.")]
    assert [len(w) for w in out.words] == [6, 2, 1]


def test_self_introductions_name_speakers_without_a_list_of_names():
    """ "I'm Alice", "my name is Bob" and "I'm Carol from engineering" each name their speaker; nobody is told
    "no evidence ... for any of: Bob"."""
    from diarize.result import Result, Speaker

    def said(text, start):
        return [{"word": w, "start": start + 0.3 * i, "end": start + 0.3 * i + 0.25}
                for i, w in enumerate(text.split())]

    words = (said("Hi everyone, I'm Alice.", 0.0) + said("Thanks Alice, my name is Bob.", 3.0)
             + said("Hello, I'm Carol from engineering.", 6.0) + said("And this is Dave (from sales).", 9.0))
    result = Result([Utterance("A", 0, 1.5), Utterance("B", 2.9, 4.9), Utterance("C", 5.9, 8.0),
                     Utterance("D", 8.9, 11.0)],
                    [Speaker("A", 1.5, 1), Speaker("B", 2.0, 1), Speaker("C", 2.1, 1), Speaker("D", 2.1, 1)], 12.0)
    out = identify(result, IdentificationRequest.parse({"transcript": words}))
    assert {s.label: s.identity.name for s in out.speakers} == {"A": "Alice", "B": "Bob", "C": "Carol", "D": "Dave"}
    assert all(s.identity.reason is None for s in out.speakers)
    lower = [{**w, "word": w["word"].lower()} for w in said("i'm happy to be here.", 0.0)]
    assert identify(Result([Utterance("A", 0, 2)], [Speaker("A", 2, 1)], 3.0),
                    IdentificationRequest.parse({"transcript": lower})).speakers[0].identity.name is None
