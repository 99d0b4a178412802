"""Combine every cue into one assignment of diarized speakers to identities, and explain each outcome.

Cue weights (log-odds units) are summed into a speakers × identities score matrix; the assignment that
maximises the total score above ``min_score`` is found with the Hungarian method. A pair whose removal
lets a rival assignment come within ``margin`` of the best is a conflict, and neither side is guessed.
What evidence leaves open may then be settled by elimination (the one requested identity left for the one
speaker left) and, only when the user asks for them, by weak priors; both are marked as such.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..config import IdentificationConfig
from ..result import Evidence, Identity
from .cues import Cue
from .request import Candidate

_PER_SOURCE_CAP = 2.0  # one kind of cue counts at most this many times its unit weight, either way


@dataclass(frozen=True)
class VoiceprintEvidence:
    """What voiceprint identification said about one diarized speaker: the enrolled person's name and role,
    the similarity ``score`` and its calibrated ``confidence`` (probability of the same voice)."""

    speaker_label: str
    name: str | None
    role: str | None = None
    score: float | None = None
    confidence: float | None = None

    @classmethod
    def from_match(cls, match: Any) -> "VoiceprintEvidence":
        """From any object with ``label`` (or ``speaker_label``), ``name``, ``role``, ``score``, ``confidence``."""
        label = getattr(match, "speaker_label", None) or match.label
        return cls(label, getattr(match, "name", None), getattr(match, "role", None),
                   getattr(match, "score", None), getattr(match, "confidence", None))


def voiceprint_cues(evidence: list[VoiceprintEvidence], config: IdentificationConfig) -> list[Cue]:
    """One cue per named match: log-odds of its confidence (a match reported without one counts as 0.9)."""
    out = []
    for vp in evidence:
        if not vp.name and not vp.role:
            continue
        p = min(max(0.9 if vp.confidence is None else vp.confidence, 1e-6), 1 - 1e-6)
        weight = float(np.clip(math.log(p / (1 - p)), -config.voiceprint_cap, config.voiceprint_cap))
        who = f"{vp.role}: {vp.name}" if vp.name and vp.role else vp.name or vp.role
        facts = ", ".join(f"{k} {v:.2f}" for k, v in (("score", vp.score), ("confidence", vp.confidence))
                          if v is not None)
        text = f"voice matches enrolled {who}" + (f" ({facts})" if facts else "")
        out.append(Cue("voiceprint", vp.speaker_label, weight, vp.name, vp.role, text))
    return out


def cue_fits(cue: Cue, candidate: Candidate) -> bool:
    """Whether a cue speaks about this candidate: by name when both have one, else by role."""
    if cue.name and candidate.name:
        return candidate.answers_to(cue.name)
    return bool(cue.role) and candidate.has_role(cue.role or "")


@dataclass
class _Board:
    """Scores and the state of the assignment while it is being decided."""

    labels: list[str]
    candidates: list[Candidate]
    scores: np.ndarray
    repeatable: list[bool]
    config: IdentificationConfig
    blocked_labels: set[int] = field(default_factory=set)
    blocked_candidates: set[int] = field(default_factory=set)
    notes: dict[tuple[str, int], str] = field(default_factory=dict)  # ("label"|"candidate", index) -> conflict
    chosen: dict[int, tuple[int, str, float]] = field(default_factory=dict)  # label -> (candidate, how, confidence)

    def gain(self) -> np.ndarray:
        g = np.where(self.scores >= self.config.min_score, self.scores - self.config.min_score + 1e-6, 0.0)
        g[list(self.blocked_labels), :] = 0.0
        g[:, list(self.blocked_candidates)] = 0.0
        return g

    def solve(self, gain: np.ndarray) -> tuple[dict[int, int], float]:
        """Best label -> candidate assignment over positive gains (repeatable candidates may go to many)."""
        if gain.size == 0:
            return {}, 0.0
        cols = [c for c, r in enumerate(self.repeatable) for _ in range(len(self.labels) if r else 1)]
        g = gain[:, cols]
        rows, picked = linear_sum_assignment(g, maximize=True)
        out = {int(r): cols[int(c)] for r, c in zip(rows, picked) if g[r, c] > 0}
        return out, float(sum(gain[r, c] for r, c in out.items()))

    def name(self, c: int) -> str:
        return self.candidates[c].describe()


def combine(
    labels: list[str],
    candidates: list[Candidate],
    cues: list[Cue],
    config: IdentificationConfig,
    allow_repeats: bool = False,
    prior_cues: Sequence[Cue] = (),
) -> tuple[dict[str, Identity], list[Identity]]:
    """Identities for every label (unassigned ones carry their reason) and the requested identities nobody got."""
    fits = _fits(labels, candidates, cues)
    scores = np.array([[_score(fits[(l, c)], config) for c in range(len(candidates))] for l in range(len(labels))])
    scores = scores.reshape(len(labels), len(candidates))
    repeatable = [allow_repeats or bool(c.channels) for c in candidates]
    board = _Board(labels, candidates, scores, repeatable, config)
    _assign_on_evidence(board)
    _eliminate(board)
    if prior_cues:
        _apply_priors(board, labels, prior_cues, fits)
        _eliminate(board)
    said: dict[str, list[Cue]] = defaultdict(list)
    for cue in cues:
        said[cue.label].append(cue)
    identities = {labels[l]: _identity(board, l, fits, said[labels[l]]) for l in range(len(labels))}
    leftover = [_unassigned_candidate(board, c) for c in range(len(candidates))
                if candidates[c].requested and c not in {v[0] for v in board.chosen.values()}]
    return identities, leftover


def _fits(labels: list[str], candidates: list[Candidate], cues: list[Cue]) -> dict[tuple[int, int], list[Cue]]:
    index = {label: i for i, label in enumerate(labels)}
    fits: dict[tuple[int, int], list[Cue]] = defaultdict(list)
    for cue in cues:
        l = index.get(cue.label)
        if l is None:
            continue
        for c, candidate in enumerate(candidates):
            if cue_fits(cue, candidate):
                fits[(l, c)].append(cue)
    return fits


def _cap(source: str, config: IdentificationConfig) -> float:
    if source == "role_phrase":
        return config.role_phrase_cap
    unit = {"introduction": config.introduction, "addressing": config.addressing, "channel": config.channel,
            "voiceprint": config.voiceprint_cap, "mention": -config.mention, "questions": config.questions,
            "opens_closes": config.opens_closes, "prior": config.prior}.get(source, 1.0)
    return abs(unit) * (1.0 if source in ("voiceprint", "channel") else _PER_SOURCE_CAP)


def _score(cues: list[Cue], config: IdentificationConfig) -> float:
    """Sum of cue weights, each source's share bounded (ten role phrases are not ten times the evidence)."""
    by_source: dict[str, float] = defaultdict(float)
    for cue in cues:
        by_source[cue.source] += cue.weight
    return float(sum(np.clip(v, -_cap(s, config), _cap(s, config)) for s, v in by_source.items()))


def _assign_on_evidence(board: _Board) -> None:
    """Optimal assignment; contested pairs become conflicts (blocked, with a note) until none is left."""
    while True:
        gain = board.gain()
        chosen, total = board.solve(gain)
        conflict = False
        confident: dict[int, tuple[int, str, float]] = {}
        for l, c in chosen.items():
            without = gain.copy()
            without[l, c] = 0.0
            alt, alt_total = board.solve(without)
            regret = total - alt_total
            rival_label = next((r for r, k in alt.items() if k == c and r != l), None)
            rival_candidate = alt.get(l) if alt.get(l) not in (None, c) else None
            if board.repeatable[c]:
                rival_label = None
            if regret < board.config.margin and (rival_label is not None or rival_candidate is not None):
                _note_conflict(board, l, c, rival_label, rival_candidate)
                conflict = True
                break
            score = float(board.scores[l, c])
            confidence = _sigmoid(min(score, regret + board.config.min_score))
            confident[l] = (c, "evidence", confidence)
        if not conflict:
            board.chosen = confident
            return


def _note_conflict(board: _Board, l: int, c: int, rival_label: int | None, rival_candidate: int | None) -> None:
    s = board.scores
    if rival_label is not None:
        text = (f"conflicting evidence: {board.name(c)} fits both {board.labels[l]} ({s[l, c]:.2f}) "
                f"and {board.labels[rival_label]} ({s[rival_label, c]:.2f})")
        board.blocked_candidates.add(c)
        for key in (("candidate", c), ("label", l), ("label", rival_label)):
            board.notes.setdefault(key, text)
    if rival_candidate is not None:
        text = (f"conflicting evidence: {board.labels[l]} fits both {board.name(c)} ({s[l, c]:.2f}) "
                f"and {board.name(rival_candidate)} ({s[l, rival_candidate]:.2f})")
        board.blocked_labels.add(l)
        for key in (("label", l), ("candidate", c), ("candidate", rival_candidate)):
            board.notes.setdefault(key, text)


def _open(board: _Board) -> tuple[list[int], list[int]]:
    taken = {v[0] for v in board.chosen.values()}
    labels = [l for l in range(len(board.labels)) if l not in board.chosen and l not in board.blocked_labels]
    candidates = [c for c in range(len(board.candidates)) if board.candidates[c].requested
                  and c not in taken and c not in board.blocked_candidates]
    return labels, candidates


def _eliminate(board: _Board) -> None:
    """The one requested identity left goes to the one speaker left, if that speaker has no evidence against it."""
    labels, candidates = _open(board)
    if not board.chosen or len(labels) != 1 or len(candidates) != 1:
        return
    l, c = labels[0], candidates[0]
    if board.scores[l, c] < 0:
        return
    confidence = 0.9 * min(v[2] for v in board.chosen.values())
    board.chosen[l] = (c, "elimination", confidence)


def _apply_priors(board: _Board, labels: list[str], prior_cues: Sequence[Cue],
                  fits: dict[tuple[int, int], list[Cue]]) -> None:
    """Weak priors decide only open speakers and identities, and only where no evidence points elsewhere."""
    open_labels, open_candidates = _open(board)
    for cue in prior_cues:
        l = labels.index(cue.label) if cue.label in labels else None
        if l is None or l not in open_labels:
            continue
        fitting = [c for c in open_candidates if cue_fits(cue, board.candidates[c])]
        if not fitting:
            continue
        c = max(fitting, key=lambda k: board.scores[l, k])
        others = [board.scores[l, k] for k in open_candidates if k != c]
        if board.scores[l, c] < 0 or (others and max(others) > board.scores[l, c] + cue.weight):
            continue
        fits[(l, c)].append(cue)
        board.chosen[l] = (c, "prior", _sigmoid(cue.weight))
        open_labels, open_candidates = _open(board)


def _identity(board: _Board, l: int, fits: dict[tuple[int, int], list[Cue]], about: list[Cue]) -> Identity:
    if l in board.chosen:
        c, how, confidence = board.chosen[l]
        candidate = board.candidates[c]
        evidence = [_evidence(cue) for cue in sorted(fits[(l, c)], key=lambda q: -q.weight)]
        if how == "elimination":
            others = ", ".join(f"{board.name(k)} is {board.labels[m]}" for m, (k, h, _) in board.chosen.items()
                               if m != l and h != "elimination")
            evidence.insert(0, Evidence("elimination", 0.0, f"the only requested identity left ({others})"))
        name, role = candidate.name, candidate.role
        if name is None:
            name, cue = _heard_name(about)
            if cue is not None and cue not in fits[(l, c)]:
                evidence.append(_evidence(cue))
        if role is None:
            role = next((q.role for q in about if q.source == "voiceprint" and q.weight > 0 and q.role), None)
        return Identity(name, role, confidence, tuple(evidence), metadata=dict(candidate.metadata))
    seen = {id(q): q for c in range(len(board.candidates)) for q in fits.get((l, c), [])}
    considered = sorted(seen.values(), key=lambda q: -abs(q.weight))[:6]
    return Identity(None, None, 0.0, tuple(_evidence(q) for q in considered), _label_reason(board, l, bool(seen)))


def _heard_name(about: list[Cue]) -> tuple[str | None, Cue | None]:
    """The name a speaker gave, was called by or whose voice it has, and the cue that says so; None if names differ."""
    named = [q for q in about if q.name and q.weight > 0 and q.source in ("introduction", "addressing", "voiceprint")]
    if not named:
        return None, None
    best = max(named, key=lambda q: q.weight)
    rivals = {q.name.lower() for q in named if q.weight >= best.weight}
    return (best.name, best) if len(rivals) == 1 else (None, None)


def _label_reason(board: _Board, l: int, has_cues: bool) -> str:
    if ("label", l) in board.notes:
        return board.notes[("label", l)]
    if not board.candidates:
        return "nothing to identify against: give known_values, speakers, channel_roles, voiceprints or a transcript"
    row = board.scores[l]
    if not has_cues:
        names = ", ".join(board.name(c) for c in range(len(board.candidates)))
        return f"no evidence about this speaker for any of: {names}"
    best = int(np.argmax(row))
    if row[best] <= 0:
        return "only evidence against the requested identities"
    if row[best] < board.config.min_score:
        return f"evidence too weak: {board.name(best)} scores {row[best]:.2f}, needs {board.config.min_score:.2f}"
    owner = next((m for m, v in board.chosen.items() if v[0] == best), None)
    if ("candidate", best) in board.notes:
        return board.notes[("candidate", best)]
    if owner is not None:
        return (f"its best match, {board.name(best)}, went to {board.labels[owner]} on stronger evidence "
                f"({board.scores[owner, best]:.2f} vs {row[best]:.2f})")
    return "no identity left that the evidence supports"


def _unassigned_candidate(board: _Board, c: int) -> Identity:
    candidate = board.candidates[c]
    reason = board.notes.get(("candidate", c))
    if reason is None:
        column = board.scores[:, c]
        best = int(np.argmax(column)) if len(column) else None
        if best is None or column[best] <= 0:
            reason = "no speaker had evidence for it"
            if board.labels and len(board.chosen) == len(board.labels):
                reason += "; every speaker was identified as someone else"
        elif column[best] < board.config.min_score:
            reason = (f"evidence too weak: best is {board.labels[best]} at {column[best]:.2f}, "
                      f"needs {board.config.min_score:.2f}")
        else:
            other = board.chosen.get(best)
            reason = (f"{board.labels[best]} fits it but was identified as {board.name(other[0])} on stronger "
                      "evidence" if other else f"{board.labels[best]} fits it but could not be given it")
    return Identity(candidate.name, candidate.role, 0.0, (), reason, dict(candidate.metadata))


def _evidence(cue: Cue) -> Evidence:
    return Evidence(cue.source, cue.weight, cue.text, cue.time, cue.said_by)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
