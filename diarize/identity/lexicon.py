"""What role names mean and what people in those roles say: the phrase lists behind the transcript cues.

A role the user names ("Agent", "Support rep", "Physician") is mapped to a role *kind* by its words; the
kind selects the phrases that count as evidence for it. Roles of no known kind still take evidence from
voiceprints, channels, introductions and addressing by their own words.
"""

from __future__ import annotations

import re

KIND_WORDS: dict[str, tuple[str, ...]] = {
    "agent": ("agent", "representative", "rep", "support", "operator", "advisor", "adviser", "associate",
              "specialist", "receptionist", "salesperson", "sales", "service", "technician", "dispatcher"),
    "customer": ("customer", "caller", "client", "consumer", "buyer", "subscriber", "user"),
    "doctor": ("doctor", "physician", "dr", "clinician", "gp", "surgeon", "dentist"),
    "nurse": ("nurse",),
    "patient": ("patient",),
    "host": ("host", "presenter", "moderator", "anchor", "emcee", "mc"),
    "guest": ("guest", "panelist", "panellist"),
    "interviewer": ("interviewer", "recruiter", "hiring", "journalist", "reporter"),
    "interviewee": ("interviewee", "candidate", "applicant", "respondent"),
}
"""Words that make a role name, or a profile description, of each kind."""

TITLE_KINDS: dict[str, str] = {"dr": "doctor", "doctor": "doctor", "nurse": "nurse"}
"""Titles before a name that also say the role."""

TITLES = frozenset({"dr", "doctor", "mr", "mrs", "ms", "miss", "mx", "prof", "professor", "nurse", "officer",
                    "sir", "madam", "captain", "coach", "judge", "father", "sister", "rabbi", "pastor"})

VOCATIVE_KINDS: dict[str, str] = {"doctor": "doctor", "doc": "doctor", "nurse": "nurse"}
"""Words people use to address someone by role."""

ROLE_PHRASES: dict[str, tuple[str, ...]] = {
    "agent": (
        r"thanks? (you )?for calling", r"how (can|may|could) i (help|assist)", r"what can i (do|help)",
        r"you'?ve reached", r"i can help (you )?with that", r"let me (check|look|pull|see|verify|transfer)",
        r"can i (have|get) your (account|name|number|date|phone|address|order)",
        r"(verify|confirm) your (account|identity|name|address|date)", r"is there anything else i can",
        r"i'?m calling from", r"(this is|my name is) [a-z]+( [a-z]+)? (calling )?(from|with) ", r"i can help you",
        r"on a recorded line", r"(may|can) i put you on hold", r"bear with me",
        r"(on|for|with) your (account|order|bill|plan|subscription|policy|payment|booking|reservation)",
        r"i'?ll (go ahead and|be happy to)", r"i apologi[sz]e for the inconvenience",
    ),
    "customer": (
        r"i'?m calling (about|because|to|regarding|for)", r"i'?m (having|experiencing) (a|an|some|trouble|problems?)",
        r"my (account|order|bill|invoice|package|card|subscription|internet|service|phone|payment|refund|delivery)",
        r"i (need|want|would like|'d like) to (cancel|return|change|update|dispute|close|upgrade|report)",
        r"i (got|received|was) (charged|billed)", r"i have a (problem|question|complaint|issue)",
        r"(can|could) i speak (to|with)", r"i never (got|received|ordered)",
    ),
    "doctor": (
        r"what brings you in", r"how long have you (had|been)", r"(any|do you have) allergies",
        r"i'?(m going to|ll|d like to) (prescribe|order|refer|examine|check your|take a look|listen)",
        r"take (this|one|two) .{0,20}(daily|a day|times|tablet|pill)", r"on a scale (of|from) (one|1|zero|0)",
        r"(are you|have you been) taking any", r"where does it hurt", r"let'?s (take a look|run some|get some)",
        r"(blood|lab) (test|work)s?", r"any other symptoms",
    ),
    "nurse": (r"i'?ll take your (vitals|blood pressure|temperature)", r"the doctor will (be|see you)"),
    "patient": (
        r"i'?ve (been having|had|got) (a|an|this|some|pain|trouble|headaches?|problems?)",
        r"it (hurts|aches|burns|itches)",
        r"my (chest|head|back|stomach|throat|knee|leg|arm|neck|shoulder|tooth) (hurts|is|has|feels)",
        r"i (feel|felt) (sick|dizzy|tired|nauseous|weak|pain)", r"my (pain|symptoms?|cough|fever)",
        r"i'?m (allergic|taking|on) ", r"should i (be worried|take)",
    ),
    "host": (
        r"welcome (back )?to (the|our|this|my)", r"(my|our) guests? (today|this week|tonight)",
        r"thanks? (you )?(all )?for (listening|tuning in|watching)",
        r"(today|tonight) (we'?re|we are) (joined|talking)",
        r"that'?s (all|it) for (today|this episode|this week|tonight)", r"(joining|with) (me|us) (today|now|tonight)",
        r"see you (next|in the next) (time|week|episode)", r"before we (wrap|finish|go)",
    ),
    "guest": (
        r"thanks? (you )?for having me", r"(glad|great|happy|good|pleasure) to be (here|on)",
        r"thanks? (you )?for (the invitation|inviting me)",
    ),
    "interviewer": (
        r"tell (me|us) (a bit |a little )?about (yourself|your|a time)", r"why do you want",
        r"what (would you say|are) (is |are )?your (greatest |biggest )?(strengths?|weakness(es)?)",
        r"do you have any questions for (me|us)", r"where do you see yourself", r"walk (me|us) through",
    ),
    "interviewee": (
        r"in my (last|previous|current) (role|job|position)", r"i (have )?worked (at|as|for|on)",
        r"my (experience|background) (is|in|with)", r"i'?m (really )?(excited|passionate) about",
    ),
}
"""Regular expressions, matched against one lower-cased turn without punctuation, that point to a role kind."""

COMPILED_PHRASES: dict[str, tuple[re.Pattern[str], ...]] = {
    kind: tuple(re.compile(rf"(?<![a-z']){p}") for p in patterns) for kind, patterns in ROLE_PHRASES.items()
}

FIRST_SPEAKER_PRIORS: dict[str, str] = {
    "agent": "in an inbound call the agent usually speaks first",
    "host": "the host usually speaks first",
    "interviewer": "the interviewer usually speaks first",
}
"""Weak priors: role kinds that usually open a conversation, and why (an outbound call swaps agent for customer)."""


def words_of(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text`` (apostrophes kept: "I'm" -> "i'm")."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("\u2019", "'"))


def role_kind(role: str | None, description: str | None = None) -> str | None:
    """The kind of a role name (then of its description), or None when no known kind's words appear."""
    for text in (role, description):
        if not text:
            continue
        words = set(words_of(text))
        for kind, names in KIND_WORDS.items():
            if words & set(names):
                return kind
    return None
