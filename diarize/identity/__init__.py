"""Speaker identification: map diarized speakers to the names and roles the user gives, from all the context
there is (voiceprints, channels, a transcript, weak priors), and say why.

>>> request = IdentificationRequest(speaker_type="role", known_values=["Agent", "Customer"], transcript=words)
>>> result = identify(pipeline("call.wav"), request)
>>> result.speakers[0].identity.role, result.speakers[0].identity.evidence[0].text
('Agent', 'Thank you for calling Acme, how can I help?')
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from ..config import IdentificationConfig
from ..errors import IdentificationError
from ..result import UNKNOWN, IdentificationSummary, Result
from .assign import VoiceprintEvidence, combine, cue_fits, voiceprint_cues
from .cues import Cue, transcript_cues
from .lexicon import FIRST_SPEAKER_PRIORS, role_kind
from .request import (
    Candidate,
    IdentificationRequest,
    SpeakerProfile,
    parse_channel_roles,
    parse_values,
    requested_candidates,
)
from .transcript import (
    AttributedTranscript,
    Word,
    attach_transcript,
    attribute_words,
    load_transcript,
    parse_transcript,
)

__all__ = [
    "AttributedTranscript", "Cue", "IdentificationRequest", "SpeakerProfile", "VoiceprintEvidence", "Word",
    "attach_transcript", "attribute_words", "identify", "load_transcript", "parse_channel_roles",
    "parse_transcript", "parse_values",
]


def identify(
    result: Result,
    request: IdentificationRequest | None = None,
    voiceprints: Iterable[VoiceprintEvidence | Any] = (),
    config: IdentificationConfig = IdentificationConfig(),
) -> Result:
    """A copy of ``result`` whose speakers carry an ``identity`` and, with a transcript, whose utterances carry text.

    ``voiceprints`` are the voiceprint store's matches for this result's speakers (``VoiceprintEvidence`` or
    any object with ``label``, ``name``, ``role``, ``score``, ``confidence``). Identities the request names
    but no speaker got are listed, each with its reason, in ``result.identification.unassigned``.
    """
    request = request or IdentificationRequest()
    labels = [s.label for s in result.speakers]
    candidates = requested_candidates(request)
    notes: list[str] = []
    cues = _channel_cues(result, request, config, notes)
    matches = [v if isinstance(v, VoiceprintEvidence) else VoiceprintEvidence.from_match(v) for v in voiceprints]
    for vp in matches:
        if vp.speaker_label not in labels:
            raise IdentificationError(f"voiceprint evidence names speaker {vp.speaker_label!r}, not in this result")
    vp_cues = voiceprint_cues(matches, config)
    open_set = _asks_for_names(request, candidates)
    if open_set:
        _add_unrequested(candidates, [q for q in vp_cues if q.weight > 0], "voiceprint")
    cues += vp_cues
    utterances = result.utterances
    if request.words:
        # Words go to one speaker each: assign them on the exclusive view (one speaker per instant).
        result = result.exclusive()
        attributed = attach_transcript(result.utterances, list(request.words), config.max_word_gap)
        utterances = attributed.utterances
        notes.append(f"transcript: {len(request.words)} words, {attributed.unattributed} near no speaker's speech "
                     "(given to UNKNOWN)")
        said = transcript_cues(attributed, [c.name for c in candidates if c.name],
                               [c.role for c in candidates if c.role], config)
        if open_set:
            _add_unrequested(candidates, [q for q in said if q.source == "introduction" and q.name], "introduction")
        cues += said
    priors = _prior_cues(result, request, config) if request.use_priors else []
    identities, leftover = combine(labels, candidates, cues, config, request.allow_repeats, priors)
    by_prior = [label for label, i in identities.items() if i.assigned and any(e.source == "prior" for e in i.evidence)]
    if by_prior:
        notes.append(f"weak prior, for want of evidence, decided: {', '.join(by_prior)}")
    speakers = [dataclasses.replace(s, identity=identities[s.label]) for s in result.speakers]
    if request.words:  # utterances joined inside a phrase: fewer of them
        speakers = [dataclasses.replace(s, utterance_count=sum(u.speaker == s.label and u.channel == s.channel
                                                               for u in utterances)) for s in speakers]
    return dataclasses.replace(result, utterances=utterances, speakers=speakers,
                               identification=IdentificationSummary(leftover, notes))


def _channel_cues(result: Result, request: IdentificationRequest, config: IdentificationConfig,
                  notes: list[str]) -> list[Cue]:
    """A channel's role for every speaker diarized on that channel."""
    if not request.channel_roles:
        return []
    facts = result.config.get("multichannel", {})
    channels = facts.get("channels")
    if channels is not None and max(request.channel_roles) > channels:
        raise IdentificationError(
            f"channel_roles names channel {max(request.channel_roles)} but the audio has {channels} channel(s)")
    if not any(s.channel is not None for s in result.speakers):
        why = facts.get("mode", "the audio was not diarized per channel (use multichannel)")
        notes.append(f"channel roles not applied: {why}")
        return []
    cues = []
    for speaker in result.speakers:
        role = request.channel_roles.get(speaker.channel or 0)
        if role is not None:
            text = f"channel {speaker.channel} is {role}"
            cues.append(Cue("channel", speaker.label, config.channel, None, role, text))
    for channel in request.channel_roles:
        if not any(s.channel == channel for s in result.speakers):
            notes.append(f"channel {channel} ({request.channel_roles[channel]}) has no speech")
    return cues


def _asks_for_names(request: IdentificationRequest, candidates: list[Candidate]) -> bool:
    """Whether people the request does not list may be named: it lists nobody, or asks for names but lists none.

    Otherwise names the evidence brings (a voice, an introduction) only complete the listed identities.
    """
    if not candidates:
        return True
    return request.speaker_type == "name" and not any(c.name for c in candidates)


def _add_unrequested(candidates: list[Candidate], cues: list[Cue], source: str) -> None:
    """Identities the request did not list but the evidence names (enrolled voices, self-introductions)."""
    for cue in cues:
        if any(cue_fits(cue, c) for c in candidates):
            continue
        if cue.name is None and source != "voiceprint":
            continue
        role = cue.role if source == "voiceprint" else None
        kind = role_kind(role) if source == "voiceprint" else cue.role
        candidates.append(Candidate(cue.name, role, kind, requested=False, source=source))


def _prior_cues(result: Result, request: IdentificationRequest, config: IdentificationConfig) -> list[Cue]:
    """The first speaker is usually the agent (inbound call; the customer when outbound), the host, the interviewer."""
    first = next((u.speaker for u in sorted(result.utterances, key=lambda u: u.start) if u.speaker != UNKNOWN), None)
    if first is None:
        return []
    out = []
    for kind, why in FIRST_SPEAKER_PRIORS.items():
        if kind == "agent" and request.call_direction == "outbound":
            kind, why = "customer", "in an outbound call the customer usually speaks first (answering)"
        out.append(Cue("prior", first, config.prior, None, kind, f"weak prior: {why}"))
    return out
