"""A user's ASR transcript: timed words read from a word list or Whisper JSON, each given to a diarized speaker.

Words go to the utterance they overlap most, found by a sweep over sorted intervals (``searchsorted`` on
non-overlapping tracks of utterances), so 100k words against thousands of utterances take milliseconds.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TranscriptError
from ..result import UNKNOWN, Utterance


@dataclass(frozen=True)
class Word:
    """One recognised word and its time span (seconds); ``channel`` (1-based) when the ASR ran per channel."""

    text: str
    start: float
    end: float
    probability: float | None = None
    channel: int | None = None


@dataclass(frozen=True)
class AttributedTranscript:
    """Utterances with text (time-ordered; words no speaker covers become UNKNOWN ones) and each one's words."""

    utterances: list[Utterance]
    words: list[list[Word]]
    unattributed: int


def load_transcript(path: str | Path) -> list[Word]:
    """Read a transcript JSON file (see :func:`parse_transcript`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TranscriptError(f"{path}: transcript file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TranscriptError(f"{path}: not a readable JSON transcript: {exc}") from exc
    try:
        return parse_transcript(data)
    except TranscriptError as exc:
        raise TranscriptError(f"{path}: {exc}") from exc


def parse_transcript(data: Any) -> list[Word]:
    """Timed words, sorted by start, from a list of ``{"word", "start", "end"}`` or Whisper-style JSON.

    Accepted: a word list; ``{"words": [...]}`` or WhisperX's ``{"word_segments": [...]}``; Whisper or
    faster-whisper output with word timestamps, ``{"segments": [{"words": [...]}, ...]}`` or the bare list
    of segments. Inside segments a word without times (WhisperX leaves some unaligned) is placed between
    its neighbours.
    """
    if isinstance(data, dict):
        if isinstance(data.get("segments"), list):
            words = _from_segments(data["segments"])
        elif isinstance(data.get("words"), list):
            words = _from_words(data["words"], "word")
        elif isinstance(data.get("word_segments"), list):
            words = _from_words(data["word_segments"], "word")
        else:
            raise TranscriptError("expected a word list or Whisper JSON with 'segments' (word timestamps on)")
    elif isinstance(data, list):
        if data and all(isinstance(d, dict) and "words" in d for d in data):
            words = _from_segments(data)
        else:
            words = _from_words(data, "word")
    else:
        raise TranscriptError(f"expected a JSON list or object, got {type(data).__name__}")
    words.sort(key=lambda w: (w.start, w.end))
    return words


def _from_words(items: list[Any], what: str) -> list[Word]:
    out = []
    for i, item in enumerate(items):
        word = _word(item, f"{what} {i}")
        if word is not None:
            out.append(word)
    return out


def _from_segments(segments: list[Any]) -> list[Word]:
    out: list[Word] = []
    for s, seg in enumerate(segments):
        if not isinstance(seg, dict):
            raise TranscriptError(f"segment {s}: expected an object, got {type(seg).__name__}")
        items = seg.get("words")
        if not isinstance(items, list):
            raise TranscriptError(f"segment {s} has no word timings: run Whisper with word_timestamps=True")
        lo, hi = _number(seg, "start", f"segment {s}", None), _number(seg, "end", f"segment {s}", None)
        timed: list[tuple[str, float | None, float | None, Any, Any]] = []
        for i, item in enumerate(items):
            where = f"segment {s} word {i}"
            if not isinstance(item, dict):
                raise TranscriptError(f"{where}: expected an object, got {type(item).__name__}")
            text = _text(item, where)
            if text:
                timed.append((text, _number(item, "start", where, None), _number(item, "end", where, None),
                              item.get("probability", item.get("score")), item.get("channel", seg.get("channel"))))
        for i, (text, start, end, prob, channel) in enumerate(timed):
            if start is None:
                start = next((t[2] for t in reversed(timed[:i]) if t[2] is not None), lo)
            if end is None:
                end = next((t[1] for t in timed[i + 1:] if t[1] is not None), hi)
            if start is None or end is None:
                raise TranscriptError(f"segment {s} word {i} ({text!r}) has no time and no timed neighbour")
            out.append(_checked(text, start, max(end, start), prob, channel, f"segment {s} word {i}"))
    return out


def _word(item: Any, where: str) -> Word | None:
    if not isinstance(item, dict):
        raise TranscriptError(f"{where}: expected an object with 'word', 'start', 'end', got {type(item).__name__}")
    text = _text(item, where)
    if not text:
        return None
    start, end = _number(item, "start", where), _number(item, "end", where)
    return _checked(text, start, end, item.get("probability", item.get("score")), item.get("channel"), where)


def _text(item: dict[str, Any], where: str) -> str:
    text = item.get("word", item.get("text"))
    if not isinstance(text, str):
        raise TranscriptError(f"{where}: 'word' must be a string")
    return text.strip()


def _number(item: dict[str, Any], key: str, where: str, default: Any = ...) -> Any:
    value = item.get(key)
    if value is None and default is not ...:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TranscriptError(f"{where}: {key!r} must be a number of seconds, got {value!r}")
    return float(value)


def _checked(text: str, start: float, end: float, probability: Any, channel: Any, where: str) -> Word:
    if start < 0 or end < start:
        raise TranscriptError(f"{where} ({text!r}): needs 0 <= start <= end, got {start}..{end}")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or channel < 1):
        raise TranscriptError(f"{where}: 'channel' must be a positive integer (1-based), got {channel!r}")
    prob = float(probability) if isinstance(probability, (int, float)) and not isinstance(probability, bool) else None
    return Word(text, start, end, prob, channel)


def interval_tracks(starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    """Split intervals into as few tracks as possible in which none overlap (indices in start order per track)."""
    order = np.lexsort((ends, starts))
    free: list[tuple[float, int]] = []  # (end of the track's last interval, track)
    tracks: list[list[int]] = []
    for i in order.tolist():
        if free and free[0][0] <= starts[i]:
            _, t = heapq.heappop(free)
        else:
            t = len(tracks)
            tracks.append([])
        tracks[t].append(i)
        heapq.heappush(free, (float(ends[i]), t))
    return [np.asarray(t, dtype=np.int64) for t in tracks]


def attribute_words(
    word_starts: np.ndarray, word_ends: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_gap: float = 1.0
) -> np.ndarray:
    """For every word, the index of the interval it overlaps most, else the nearest within ``max_gap``, else -1.

    Intervals may overlap each other (several channels, overlapped speech). Cost: O((W + U) log U).
    """
    ws = np.asarray(word_starts, np.float64)
    we = np.maximum(np.asarray(word_ends, np.float64), ws + 1e-6)
    starts, ends = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    best = np.full(len(ws), -1, np.int64)
    if len(ws) == 0 or len(starts) == 0:
        return best
    best_overlap = np.zeros(len(ws))
    best_gap = np.full(len(ws), np.inf)
    for track in interval_tracks(starts, ends):
        s, e = starts[track], ends[track]
        lo = np.searchsorted(e, ws, side="right")  # first interval ending after the word starts
        hi = np.searchsorted(s, we, side="left")  # intervals [lo, hi) overlap the word
        count = hi - lo
        for offset in range(int(count.max(initial=0))):
            rows = np.flatnonzero(count > offset)
            k = lo[rows] + offset
            overlap = np.minimum(e[k], we[rows]) - np.maximum(s[k], ws[rows])
            better = overlap > best_overlap[rows]
            best[rows[better]] = track[k[better]]
            best_overlap[rows[better]] = overlap[better]
        loose = np.flatnonzero((count == 0) & (best_overlap == 0))
        for k, gap in ((lo[loose] - 1, ws[loose] - e[np.maximum(lo[loose] - 1, 0)]),
                       (lo[loose], s[np.minimum(lo[loose], len(s) - 1)] - we[loose])):
            valid = (k >= 0) & (k < len(s)) & (gap <= max_gap) & (gap < best_gap[loose])
            best[loose[valid]] = track[k[valid]]
            best_gap[loose[valid]] = gap[valid]
    return best


def attach_transcript(utterances: list[Utterance], words: list[Word], max_gap: float = 1.0) -> AttributedTranscript:
    """Give every word a speaker and return the speaker-attributed transcript.

    Each diarized utterance gets the text of its words (empty when none); words farther than ``max_gap``
    from every utterance form UNKNOWN utterances of their own. Words that name a channel only go to that
    channel's utterances.
    """
    owner = np.full(len(words), -1, np.int64)
    channels = {w.channel for w in words}
    starts = np.array([u.start for u in utterances], np.float64)
    ends = np.array([u.end for u in utterances], np.float64)
    for channel in channels:
        rows = np.array([i for i, w in enumerate(words) if w.channel == channel], np.int64)
        pool = np.array([j for j, u in enumerate(utterances) if channel is None or u.channel == channel], np.int64)
        if len(pool) == 0:
            continue
        ws = np.array([words[i].start for i in rows])
        we = np.array([words[i].end for i in rows])
        got = attribute_words(ws, we, starts[pool], ends[pool], max_gap)
        owner[rows] = np.where(got >= 0, pool[np.maximum(got, 0)], -1)
    per_utterance: list[list[Word]] = [[] for _ in utterances]
    loose: list[list[Word]] = []
    for word, j in zip(words, owner.tolist()):
        if j >= 0:
            per_utterance[j].append(word)
        elif loose and loose[-1][-1].channel == word.channel and word.start - loose[-1][-1].end <= max_gap:
            loose[-1].append(word)
        else:
            loose.append([word])
    rows_out = [(_with_text(u, ws), ws) for u, ws in zip(utterances, per_utterance)]
    rows_out += [(Utterance(UNKNOWN, ws[0].start, max(w.end for w in ws), 0.0, ws[0].channel, join_words(ws)), ws)
                 for ws in loose]
    rows_out.sort(key=lambda r: (r[0].start, r[0].channel or 0))
    rows_out = _join_phrases(rows_out, max_gap)
    return AttributedTranscript([r[0] for r in rows_out], [r[1] for r in rows_out], sum(len(ws) for ws in loose))


def _join_phrases(rows: list[tuple[Utterance, list[Word]]], max_gap: float) -> list[tuple[Utterance, list[Word]]]:
    """Consecutive utterances of one speaker joined where the cut falls inside a phrase: the first one's last word
    ends no sentence and the next word follows within ``max_gap`` ("thanks Alice my" / "name is Bob")."""
    out: list[tuple[Utterance, list[Word]]] = []
    for u, ws in rows:
        if out and ws:
            last, last_words = out[-1]
            if (last.speaker == u.speaker != UNKNOWN and last.channel == u.channel and last_words
                    and not last_words[-1].text.rstrip("\"')]").endswith((".", "?", "!"))
                    and ws[0].start - last_words[-1].end <= max_gap):
                words = last_words + ws
                out[-1] = (replace(last, end=max(last.end, u.end), confidence=min(last.confidence, u.confidence),
                                   text=join_words(words)), words)
                continue
        out.append((u, ws))
    return out


def join_words(words: list[Word]) -> str:
    """Words as one line of text."""
    return " ".join(w.text for w in words)


def _with_text(utterance: Utterance, words: list[Word]) -> Utterance:
    return replace(utterance, text=join_words(words))
