"""Transcript exports of a result: SRT and WebVTT captions (through pysubs2) and plain "Speaker: words" text.

Captions use the exclusive view (one speaker per instant) and name each speaker by its identity when it has one.
"""

from __future__ import annotations

from typing import Literal

import pysubs2

from .result import Result, Utterance

CaptionFormat = Literal["srt", "vtt", "txt"]
CAPTION_FORMATS: tuple[str, ...] = ("srt", "vtt", "txt")


def speaker_names(result: Result) -> dict[str, str]:
    """Each speaker's display name: its identified name (or role), else its label."""
    names = {}
    for s in result.speakers:
        identity = s.identity
        names[s.label] = (identity.name or identity.role) if identity is not None and identity.assigned else s.label
    return names


def _turns(result: Result) -> list[Utterance]:
    """The exclusive view's utterances, consecutive ones of one speaker (on one channel) joined into a turn."""
    turns: list[Utterance] = []
    for u in result.exclusive().utterances:
        last = turns[-1] if turns else None
        if last is not None and last.speaker == u.speaker and last.channel == u.channel:
            text = " ".join(t for t in (last.text, u.text) if t) or None
            turns[-1] = Utterance(last.speaker, last.start, max(last.end, u.end), last.confidence, last.channel, text)
        else:
            turns.append(u)
    return turns


def _clock(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def to_captions(result: Result, fmt: CaptionFormat) -> str:
    """``result`` as SRT or WebVTT (one caption per utterance: "Name: words", or the name alone without a
    transcript) or as text, one "Name: words" line per speaker turn (its times when there is no transcript)."""
    if fmt not in CAPTION_FORMATS:
        raise ValueError(f"unknown caption format {fmt!r}; expected one of {', '.join(CAPTION_FORMATS)}")
    names = speaker_names(result)
    if fmt == "txt":
        return "".join(f"{names.get(u.speaker, u.speaker)}: {u.text}\n" if u.text else
                       f"{names.get(u.speaker, u.speaker)}: [{_clock(u.start)} - {_clock(u.end)}]\n"
                       for u in _turns(result))
    subtitles = pysubs2.SSAFile()
    for u in result.exclusive().utterances:
        event = pysubs2.SSAEvent(start=pysubs2.make_time(s=u.start), end=pysubs2.make_time(s=u.end))
        name = names.get(u.speaker, u.speaker)
        event.plaintext = f"{name}: {u.text}" if u.text else name
        subtitles.append(event)
    return subtitles.to_string(fmt)
