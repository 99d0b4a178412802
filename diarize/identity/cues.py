"""Cues in a speaker-attributed transcript: who introduces themselves, who is addressed, who talks like whom.

Every cue is about one diarized speaker and supports (positive weight) or contradicts (negative) a name or
a role; :mod:`diarize.identity.assign` adds them up per speaker and identity.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from ..config import IdentificationConfig
from ..result import UNKNOWN
from .lexicon import COMPILED_PHRASES, KIND_WORDS, TITLE_KINDS, TITLES, VOCATIVE_KINDS, role_kind
from .request import name_aliases
from .transcript import AttributedTranscript, Word


@dataclass(frozen=True)
class Cue:
    """Evidence that diarized speaker ``label`` is (weight > 0) or is not (< 0) the person ``name`` / a ``role``."""

    source: str
    label: str
    weight: float
    name: str | None = None
    role: str | None = None
    text: str = ""
    time: float | None = None
    said_by: str | None = None


@dataclass(frozen=True)
class _Tok:
    raw: str  # the word as recognised
    norm: str  # lower case, no surrounding punctuation
    display: str  # the word without trailing punctuation (titles keep their period)
    cap: bool
    stop: str  # "," / "." / "?" / "!" right after the word, else ""
    time: float


@dataclass(frozen=True)
class _Turn:
    label: str
    toks: tuple[_Tok, ...]


_ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "st", "jr", "sr"})
_STRONG_INTROS = (("my", "name", "is"), ("my", "name's"), ("the", "name's"), ("i", "go", "by"))
_WEAK_INTROS = (("i'm",), ("i", "am"), ("im",), ("this", "is"), ("it's",))
_ROLE_INTROS = (("i'm",), ("i", "am"), ("im",), ("i'll", "be"), ("i", "will", "be"), ("this", "is"),
                ("i", "work", "as"))
_TRIGGERS = _STRONG_INTROS + _WEAK_INTROS + tuple(t for t in _ROLE_INTROS if t not in _WEAK_INTROS)
_INTRO_STARTS = frozenset(t[0] for t in _TRIGGERS)
_AFTER_THIS_IS = frozenset({"from", "with", "at", "speaking", "calling", "here", "on", "over"})
_FILLERS = frozenset({"uh", "um", "er", "erm", "ah", "uhm"})
_DETERMINERS = frozenset({"your", "the", "a", "an", "one", "of", "today's", "tonight's", "our"})
_GREETINGS = frozenset({"hi", "hello", "hey", "thanks", "morning", "afternoon", "evening", "night", "bye",
                        "goodbye", "sorry", "yes", "yeah", "no", "okay", "ok", "well", "right", "sure", "great",
                        "welcome", "congratulations", "dear", "please", "cheers", "oh"})
_QUESTION_STARTS = frozenset({"what", "why", "how", "when", "where", "who", "which", "do", "does", "did", "are",
                              "is", "can", "could", "would", "will", "have", "has", "should", "may", "tell"})
_NOT_NAMES = frozenset({
    "i", "a", "an", "the", "and", "but", "or", "so", "just", "not", "really", "very", "here", "there", "from",
    "with", "at", "in", "on", "of", "to", "for", "is", "it", "this", "that", "yes", "no", "sorry", "fine", "good",
    "okay", "ok", "calling", "speaking", "going", "gonna", "trying", "looking", "glad", "happy", "afraid", "sure",
    "your", "my", "our", "their", "his", "her", "also", "still", "now", "today", "well", "actually", "back",
    "um", "uh", "doing", "having", "getting", "new", "done", "ready", "right", "great", "thanks", "thank",
    "hi", "hello", "hey", "we", "you", "they", "he", "she", "me", "us", "them", "been", "being", "be", "was",
    "everyone", "everybody", "all", "guys", "folks", "team", "again", "much", "lot", "bye", "sir", "madam",
})
_ORGANISATION_WORDS = frozenset({
    "bank", "support", "services", "service", "inc", "ltd", "llc", "corp", "company", "group", "team", "department",
    "insurance", "airlines", "airways", "clinic", "hospital", "office", "center", "centre", "desk", "line", "energy",
    "telecom", "mobile", "store", "shop", "solutions", "systems", "technologies", "university", "college", "show",
})


def transcript_cues(transcript: AttributedTranscript, names: Iterable[str], role_words: Iterable[str],
                    config: IdentificationConfig) -> list[Cue]:
    """All transcript cues: introductions, addressing, role phrases, question share, who opens and closes, mentions.

    ``names`` are the known people's names (matched by full, first or last name); ``role_words`` are the
    requested roles, so that "I'm your host" counts even for roles of no known kind.
    """
    turns = _turns(transcript)
    if not turns:
        return []
    has_caps = any(t.cap for turn in turns for t in turn.toks if t.norm not in ("i", "i'm", "i'll"))
    aliases = {alias for name in names for alias in name_aliases(name)}
    roles = {w.lower(): w for w in role_words if len(w.split()) == 1}
    cues: list[Cue] = []
    for index, turn in enumerate(turns):
        used: set[int] = set()
        cues += _introductions(turn, aliases, roles, has_caps, used, config)
        cues += _addressing(turns, index, aliases, has_caps, used, config)
        cues += _mentions(turn, aliases, used, config)
    cues += _role_phrases(turns, config)
    cues += _questions(turns, config)
    cues += _opens_and_closes(turns, config)
    return cues


def _turns(transcript: AttributedTranscript) -> list[_Turn]:
    """Consecutive utterances of one speaker joined into turns; UNKNOWN and silent ones left out."""
    turns: list[tuple[str, list[_Tok]]] = []
    for utterance, words in zip(transcript.utterances, transcript.words):
        if utterance.speaker == UNKNOWN or not words:
            continue
        toks = [t for t in (_tok(w) for w in words) if t.norm]
        if not toks:
            continue
        if turns and turns[-1][0] == utterance.speaker:
            turns[-1][1].extend(toks)
        else:
            turns.append((utterance.speaker, toks))
    return [_Turn(label, tuple(toks)) for label, toks in turns]


def _tok(word: Word) -> _Tok:
    raw = word.text.strip().replace("\u2019", "'")
    norm = re.sub(r"^[^\w]+|[^\w']+$", "", raw.lower()).strip("'")
    norm = re.sub(r"[^\w']", "", norm)
    tail = raw.rstrip("\"')]")[-1:] if raw else ""
    stop = {",": ",", ";": ",", ":": ",", ".": ".", "?": "?", "!": "!"}.get(tail, "")
    if stop == "." and norm in _ABBREVIATIONS:
        stop = ""
    display = raw.strip("\"'()[]").rstrip(",;:?!")
    if norm not in _ABBREVIATIONS:
        display = display.rstrip(".")
    letter = next((ch for ch in raw if ch.isalpha()), "")
    return _Tok(raw, norm, display, letter.isupper(), stop, word.start)


def _ends_sentence(tok: _Tok) -> bool:
    return tok.stop in (".", "?", "!")


def _starts_with(toks: tuple[_Tok, ...], j: int, words: tuple[str, ...]) -> bool:
    """Whether ``words`` begin at ``j`` with no sentence break inside."""
    end = j + len(words)
    return end <= len(toks) and all(toks[j + i].norm == w for i, w in enumerate(words)) and not any(
        _ends_sentence(toks[i]) for i in range(j, end - 1))


def _known_name(toks: tuple[_Tok, ...], j: int, aliases: set[tuple[str, ...]]) -> tuple[int, str, str | None] | None:
    """A known name (optionally after a title) at ``j``: (end, display, title kind)."""
    k, title = j, None
    if toks[j].norm in TITLES and j + 1 < len(toks) and toks[j].stop == "":
        k, title = j + 1, toks[j].norm
    if not any(alias[0] == toks[k].norm for alias in aliases):
        return None
    for length in range(min(4, len(toks) - k), 0, -1):
        seq = tuple(t.norm for t in toks[k:k + length])
        if seq in aliases and all(t.stop == "" for t in toks[k:k + length - 1]):
            return k + length, " ".join(t.display for t in toks[j:k + length]), TITLE_KINDS.get(title or "")
    return None


def _open_name(toks: tuple[_Tok, ...], j: int, has_caps: bool) -> tuple[int, str, str | None] | None:
    """A name not in any list at ``j`` (capitalised words where the transcript has capitals)."""
    k, title = j, None
    if toks[j].norm in TITLES and toks[j].stop == "" and j + 1 < len(toks):
        k, title = j + 1, toks[j].norm
    end = k
    while end < len(toks) and end - k < 3:
        tok = toks[end]
        if tok.norm in _NOT_NAMES or tok.norm in TITLES or not re.fullmatch(r"[a-z]+(?:[-'][a-z]{2,})*", tok.norm) or (
                has_caps and not tok.cap):
            break
        end += 1
        if tok.stop or (not has_caps and end - k >= 2):
            break
    if end == k or end < len(toks) and toks[end].norm in _ORGANISATION_WORDS or any(
            t.norm in _ORGANISATION_WORDS for t in toks[k:end]):
        return None  # "this is Acme Bank": a company, not a person
    return end, " ".join(t.display for t in toks[j:end]), TITLE_KINDS.get(title or "")


def _sentence(toks: tuple[_Tok, ...], j: int, limit: int = 24) -> str:
    """The sentence around token ``j`` as recognised; a long one is cut to ``limit`` words around ``j``."""
    a = j
    while a > 0 and not _ends_sentence(toks[a - 1]):
        a -= 1
    b = j
    while b < len(toks) - 1 and not _ends_sentence(toks[b]):
        b += 1
    if b - a >= limit:
        a = max(a, min(j - limit // 2, b + 1 - limit))
        b = a + limit - 1
    return " ".join(t.raw for t in toks[a:b + 1])


def _introductions(turn: _Turn, aliases: set[tuple[str, ...]], roles: dict[str, str], has_caps: bool,
                   used: set[int], config: IdentificationConfig) -> list[Cue]:
    toks, out = turn.toks, []
    for j in range(len(toks)):
        if j in used:
            continue
        here = _known_name(toks, j, aliases) if j == 0 or toks[j - 1].stop else None
        if here is not None and here[0] < len(toks) and toks[here[0]].norm in ("here", "speaking"):
            out.append(Cue("introduction", turn.label, config.introduction, here[1], here[2], _sentence(toks, j),
                           toks[j].time, turn.label))  # "Maria here", "Sarah speaking"
            used.update(range(j, here[0] + 1))
            continue
        if toks[j].norm not in _INTRO_STARTS:
            continue
        for trigger in _TRIGGERS:
            if not _starts_with(toks, j, trigger):
                continue
            k = j + len(trigger)
            while k < len(toks) and toks[k].norm in _FILLERS:
                k += 1
            if k >= len(toks) or _ends_sentence(toks[k - 1]):
                break
            names_follow = trigger in _STRONG_INTROS or trigger in _WEAK_INTROS
            found = _known_name(toks, k, aliases) if names_follow else None
            if found is None and names_follow:
                found = _open_name(toks, k, has_caps)
                strong = trigger in _STRONG_INTROS
                titled = found is not None and found[2] is not None
                # "I'm Alice.", "this is Carol from engineering": a capitalised name that ends the phrase
                phrase = found is not None and has_caps and (
                    found[0] == len(toks) or toks[found[0] - 1].stop != ""
                    or toks[found[0]].norm in _AFTER_THIS_IS)
                if found is not None and not (strong or titled or phrase):
                    found = None
            if found is not None:
                end, display, kind = found
                out.append(Cue("introduction", turn.label, config.introduction, display, kind,
                               _sentence(toks, j), toks[j].time, turn.label))
                used.update(range(j, end))
                break
            role = _role_intro(toks, j, trigger, roles)
            if role is not None:
                out.append(Cue("introduction", turn.label, config.introduction, None, role[1],
                               _sentence(toks, j), toks[j].time, turn.label))
                used.update(range(j, role[0]))
                break
    return out


def _role_intro(toks: tuple[_Tok, ...], j: int, trigger: tuple[str, ...], roles: dict[str, str]
                ) -> tuple[int, str] | None:
    """"I'm your host", "this is customer service": (end, role kind or requested role word)."""
    if trigger not in _ROLE_INTROS:
        return None
    k = j + len(trigger)
    while k < len(toks) and toks[k].norm in _DETERMINERS and toks[k].stop == "":
        k += 1
    if k >= len(toks):
        return None
    word = toks[k].norm
    if word in roles:
        return k + 1, roles[word]
    if not any(word in names for names in KIND_WORDS.values()):
        return None
    two = f"{word} {toks[k + 1].norm}" if k + 1 < len(toks) and toks[k].stop == "" else word
    kind = role_kind(two) or role_kind(word)
    return (k + 1, kind) if kind else None


def _is_vocative(toks: tuple[_Tok, ...], j: int, end: int) -> bool:
    """Whether the words [j, end) are said *to* someone: "Thanks, Doctor", "Peter, what do you think?"."""
    before = toks[j - 1] if j > 0 else None
    closed = end == len(toks) or toks[end - 1].stop != ""
    if before is None or _ends_sentence(before):
        return closed
    return _after_greeting(toks, j) or before.stop == "," and closed


def _after_greeting(toks: tuple[_Tok, ...], j: int) -> bool:
    """Whether word ``j`` follows a greeting or thanks ("Hi", "Thank you", "Excuse me")."""
    if j == 0 or _ends_sentence(toks[j - 1]):
        return False
    before = toks[j - 1].norm
    return before in _GREETINGS or (j > 1 and (before, toks[j - 2].norm) in (("you", "thank"), ("me", "excuse")))


def _addressing(turns: list[_Turn], index: int, aliases: set[tuple[str, ...]], has_caps: bool, used: set[int],
                config: IdentificationConfig) -> list[Cue]:
    turn = turns[index]
    toks, out = turn.toks, []
    j = 0
    while j < len(toks):
        if j in used:
            j += 1
            continue
        found = _known_name(toks, j, aliases)
        if found is None and has_caps and toks[j].norm in TITLES and toks[j].stop == "":
            titled = _open_name(toks, j, has_caps)  # "Dr. Chen", "Ms. Lee": a title and a name
            found = titled if titled is not None and titled[0] > j + 1 else None
        if found is None and has_caps and toks[j].cap and _after_greeting(toks, j):
            found = _open_name(toks, j, has_caps)  # "Hi Sarah", "Thanks, Peter"
        if found is None and toks[j].norm in VOCATIVE_KINDS:
            found = (j + 1, toks[j].display, VOCATIVE_KINDS[toks[j].norm])
        if found is None or not _is_vocative(toks, j, found[0]):
            j += 1
            continue
        end, display, kind = found
        name = None if toks[j].norm in VOCATIVE_KINDS and end == j + 1 else display
        sentence, time = _sentence(toks, j), toks[j].time
        question = next((t.stop for t in toks[j:] if _ends_sentence(t)), "") == "?"
        for label, share in _addressees(turns, index, prefer_next=question):
            out.append(Cue("addressing", label, config.addressing * share, name, kind, sentence, time, turn.label))
        out.append(Cue("addressing", turn.label, config.addressing_self, name, kind, sentence, time, turn.label))
        used.update(range(j, end))
        j = end
    return out


def _addressees(turns: list[_Turn], index: int, prefer_next: bool) -> list[tuple[str, float]]:
    """Who a turn speaks to: the neighbouring speaker (the next one after a question), the other one less surely."""
    me = turns[index].label
    before = turns[index - 1].label if index > 0 and turns[index - 1].label != me else None
    after = turns[index + 1].label if index + 1 < len(turns) and turns[index + 1].label != me else None
    likely, other = (after, before) if prefer_next else (before, after)
    if likely is None:
        likely, other = other, None
    if likely is None:
        return []
    if other is None or other == likely:
        return [(likely, 1.0)]
    return [(likely, 0.7), (other, 0.3)]


def _mentions(turn: _Turn, aliases: set[tuple[str, ...]], used: set[int], config: IdentificationConfig) -> list[Cue]:
    out, seen = [], set()
    for j in range(len(turn.toks)):
        if j in used:
            continue
        found = _known_name(turn.toks, j, aliases)
        if found is not None and found[1].lower() not in seen:
            seen.add(found[1].lower())
            out.append(Cue("mention", turn.label, config.mention, found[1], None, _sentence(turn.toks, j),
                           turn.toks[j].time, turn.label))
    return out


def _role_phrases(turns: list[_Turn], config: IdentificationConfig) -> list[Cue]:
    """Each phrase of a role kind counts once per speaker, at its first use; phrases in one sentence make one cue."""
    found: dict[tuple[str, str, str], Cue] = {}
    seen = set()
    for turn in turns:
        text, offsets = "", []
        for tok in turn.toks:
            offsets.append(len(text))
            text += tok.norm + " "
        for kind, patterns in COMPILED_PHRASES.items():
            for p, pattern in enumerate(patterns):
                key = (turn.label, kind, p)
                match = None if key in seen else pattern.search(text)
                if match is None:
                    continue
                seen.add(key)
                j = bisect_right(offsets, match.start()) - 1
                sentence = _sentence(turn.toks, j)
                cue = found.get((turn.label, kind, sentence))
                weight = config.role_phrase + (cue.weight if cue else 0.0)
                time = min(turn.toks[j].time, cue.time if cue and cue.time is not None else turn.toks[j].time)
                found[(turn.label, kind, sentence)] = Cue("role_phrase", turn.label, weight, None, kind, sentence,
                                                          time, turn.label)
    return list(found.values())


def _questions(turns: list[_Turn], config: IdentificationConfig) -> list[Cue]:
    """The speaker who asks most of the questions (at least 3, twice the next one's) sounds like the interviewer."""
    marked = any(t.stop == "?" for turn in turns for t in turn.toks)
    count: Counter[str] = Counter()
    first: dict[str, float] = {}
    for turn in turns:
        start = 0
        for j, tok in enumerate(turn.toks):
            if _ends_sentence(tok) or j == len(turn.toks) - 1:
                asked = tok.stop == "?" if marked else turn.toks[start].norm in _QUESTION_STARTS
                if asked:
                    count[turn.label] += 1
                    first.setdefault(turn.label, turn.toks[start].time)
                start = j + 1
    speakers = {t.label for t in turns}
    if len(speakers) < 2 or not count:
        return []
    (top, asked), *rest = count.most_common()
    runner_up = rest[0][1] if rest else 0
    if asked < 3 or asked < 2 * runner_up + 1:
        return []
    text = f"asked {asked} of the {sum(count.values())} questions"
    return [Cue("questions", top, config.questions, None, "interviewer", text, first[top]),
            Cue("questions", top, config.questions / 2, None, "host", text, first[top])]


def _opens_and_closes(turns: list[_Turn], config: IdentificationConfig) -> list[Cue]:
    """A host opens and closes the show."""
    if len(turns) < 4 or len({t.label for t in turns}) < 2 or turns[0].label != turns[-1].label:
        return []
    return [Cue("opens_closes", turns[0].label, config.opens_closes, None, "host",
                "opened and closed the conversation", turns[0].toks[0].time)]
