"""Scripted conversations on real voices: LibriSpeech audio per turn, a written transcript with word timings.

The words are what an ASR would have returned for a conversation with that script; the audio under them
is each reader's real voice (read speech), cut to the length the turn's words would take to say.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import cycle

import numpy as np
from pyannote.core import Annotation, Segment

from .speech import speech_spans

SR = 16000
WORDS_PER_SECOND = 2.6


@dataclass(frozen=True)
class Turn:
    """One scripted turn: who says it, what, and where its speech lies in the conversation (seconds)."""

    speaker: str
    text: str
    start: float
    end: float
    spans: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Conversation:
    """Audio (mono ``(n,)`` or ``(channels, n)``), its turns and its reference (speech spans per speaker)."""

    audio: np.ndarray
    turns: tuple[Turn, ...]
    reference: Annotation
    channel_of: dict[str, int]

    def words(self) -> list[dict]:
        """The transcript as [{"word", "start", "end"}]: each turn's words spread over its speech by length."""
        out = []
        for turn in self.turns:
            tokens = turn.text.split()
            total = sum(b - a for a, b in turn.spans)
            weights = np.array([len(t) + 1.0 for t in tokens])
            edges = np.concatenate([[0.0], np.cumsum(weights / weights.sum() * total)])
            for token, a, b in zip(tokens, edges[:-1], edges[1:]):
                out.append({"word": token, "start": round(_at(turn.spans, a), 3),
                            "end": round(_at(turn.spans, b - 0.02 * (b - a)), 3)})
        return out

    def turns_of(self, speaker: str) -> list[Turn]:
        return [t for t in self.turns if t.speaker == speaker]

    def retold(self, texts: list[str]) -> "Conversation":
        """The same audio and turns with other words said in them (another transcript for the same voices)."""
        if len(texts) != len(self.turns):
            raise ValueError(f"{len(texts)} texts for {len(self.turns)} turns")
        turns = tuple(replace(t, text=text) for t, text in zip(self.turns, texts))
        return replace(self, turns=turns)


def _at(spans: tuple[tuple[float, float], ...], offset: float) -> float:
    """The time ``offset`` seconds of speech into ``spans``."""
    for a, b in spans:
        if offset <= b - a:
            return a + offset
        offset -= b - a
    return spans[-1][1]


def build_scripted(
    script: list[tuple[str, str]],
    voices: dict[str, list[np.ndarray]],
    seed: int = 0,
    channel_of: dict[str, int] | None = None,
    bleed_db: float = -25.0,
    bleed_delay: float = 0.012,
) -> Conversation:
    """Say ``script`` ((speaker, text) turns) with ``voices`` (speaker -> utterances, used in turn).

    Mono by default; with ``channel_of`` (speaker -> channel index) each party gets its own channel, the
    other parties heard in it at ``bleed_db`` after ``bleed_delay`` seconds, over a faint noise floor.
    """
    rng = np.random.default_rng(seed)
    pools = {s: cycle(v) for s, v in voices.items()}
    tracks: dict[str, list[np.ndarray]] = {s: [] for s in voices}
    turns, cursor = [], 0
    for speaker, text in script:
        gap = int(rng.uniform(0.4, 0.9) * SR)
        speech = next(pools[speaker])
        wanted = max(1.5, len(text.split()) / WORDS_PER_SECOND)
        speech = speech[: int(min(wanted, len(speech) / SR) * SR)]
        for s in tracks:
            tracks[s].append(np.zeros(gap + len(speech), np.float32))
        tracks[speaker][-1][gap:] = speech
        start = (cursor + gap) / SR
        spans = tuple((start + a, start + b) for a, b in speech_spans(speech, SR))
        spans = spans or ((start, start + len(speech) / SR),)
        turns.append(Turn(speaker, text, spans[0][0], spans[-1][1], spans))
        cursor += gap + len(speech)
    tail = np.zeros(SR // 2, np.float32)
    own = {s: np.concatenate(parts + [tail]) for s, parts in tracks.items()}
    reference = Annotation(uri="scripted")
    for turn in turns:
        for a, b in turn.spans:
            reference[Segment(a, b), len(reference)] = turn.speaker
    if channel_of is None:
        return Conversation(sum(own.values()).astype(np.float32), tuple(turns), reference, {})
    n = len(next(iter(own.values())))
    delay = int(bleed_delay * SR)
    gain = 10 ** (bleed_db / 20)
    channels = np.zeros((max(channel_of.values()) + 1, n), np.float32)
    for speaker, x in own.items():
        late = np.concatenate([np.zeros(delay, np.float32), x[: n - delay]])
        for c in range(channels.shape[0]):
            channels[c] += x if channel_of[speaker] == c else gain * late
    channels += 10 ** (-65 / 20) * rng.standard_normal(channels.shape).astype(np.float32)
    return Conversation(channels, tuple(turns), reference, dict(channel_of))


def voiceprint_evidence(backend, enrolled: dict[str, np.ndarray], result, threshold: float = 0.8,
                        roles: dict[str, str] | None = None) -> list:
    """What a voiceprint store would report for ``result``'s speakers: each one's best enrolled voice, named only
    when its cosine clears ``threshold``; confidence is a logistic of the margin (a stand-in calibration)."""
    from diarize.identity import VoiceprintEvidence

    vectors = {name: backend.embed(np.asarray(audio, np.float32)) for name, audio in enrolled.items()}
    out = []
    for speaker in result.speakers:
        name, score = max(((n, float(v @ speaker.centroid)) for n, v in vectors.items()), key=lambda kv: kv[1])
        confidence = 1 / (1 + np.exp(-(score - threshold) / 0.04))
        matched = score >= threshold
        out.append(VoiceprintEvidence(speaker.label, name if matched else None,
                                      (roles or {}).get(name) if matched else None, score, float(confidence)))
    return out
