"""Speaker-verification trials on LibriSpeech for any ``EmbeddingBackend``: EER and minDCF per crop length.

Segments: each test-other utterance (trimmed), and the two halves of each train-clean utterance (cut at the
quietest point near the middle, trimmed). Target trials pair two segments of one reader (different utterances,
or the two halves); non-target trials pair segments of two readers (seeded sample). Each condition crops both
sides of every trial to the same length of trimmed speech at a seeded random offset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .librispeech import Corpus
from .metrics import eer, min_dcf
from .speech import SR, lowest_energy_point, speech_bounds

CROPS: tuple[float | None, ...] = (None, 2.0, 1.0, 0.5)  # None = the full segment
P_TARGETS = (0.01, 0.05)


@dataclass(frozen=True)
class Segment:
    name: str
    reader: str
    uid: str
    start: int
    end: int


def segments(corpus: Corpus) -> list[Segment]:
    out: list[Segment] = []
    for uid, utt in sorted(corpus.utterances.items()):
        audio, thr = corpus.load(uid)
        bounds = speech_bounds(audio, thr)
        if bounds is None:
            continue
        a, b = bounds
        if utt.reader in corpus.rich:
            out.append(Segment(uid, utt.reader, uid, a, b))
            continue
        mid = lowest_energy_point(audio, (a + b) // 2 - SR, (a + b) // 2 + SR)
        for half, (lo, hi) in enumerate(((a, mid), (mid, b))):
            sub = speech_bounds(audio[lo:hi], thr)
            if sub is not None and sub[1] - sub[0] >= SR:
                out.append(Segment(f"{uid}.{half}", utt.reader, uid, lo + sub[0], lo + sub[1]))
    return out


def make_trials(segs: list[Segment], seed: int, max_target: int | None,
                n_nontarget: int) -> list[tuple[int, int, bool]]:
    """``(i, j, same_speaker)`` index pairs into ``segs``."""
    rng = np.random.default_rng([seed, 5])
    by_reader: dict[str, list[int]] = {}
    for i, s in enumerate(segs):
        by_reader.setdefault(s.reader, []).append(i)
    target = [(a, b, True) for idx in by_reader.values() for n, a in enumerate(idx) for b in idx[n + 1 :]]
    if max_target is not None and len(target) > max_target:
        target = [target[int(i)] for i in np.sort(rng.choice(len(target), max_target, replace=False))]
    nontarget: set[tuple[int, int]] = set()
    while len(nontarget) < n_nontarget:
        a, b = (int(v) for v in rng.choice(len(segs), 2, replace=False))
        if segs[a].reader != segs[b].reader:
            nontarget.add((min(a, b), max(a, b)))
    return target + [(a, b, False) for a, b in sorted(nontarget)]


def evaluate(backend: Any, corpus: Corpus, seed: int, single_readers: int | None = None,
             max_target: int | None = None, n_nontarget: int = 20000) -> dict[str, Any]:
    """EER / minDCF of cosine scores for each crop condition (optionally on a seeded subset of train-clean readers)."""
    segs = segments(corpus)
    if single_readers is not None:
        rng = np.random.default_rng([seed, 4])
        keep = set(corpus.rich) | {str(r) for r in rng.choice(corpus.single, single_readers, replace=False)}
        segs = [s for s in segs if s.reader in keep]
    trials = make_trials(segs, seed, max_target, n_nontarget)
    used = sorted({i for a, b, _ in trials for i in (a, b)})
    labels = np.array([t[2] for t in trials])
    results: dict[str, Any] = {"segments": len(used), "target_trials": int(labels.sum()),
                               "nontarget_trials": int((~labels).sum()), "conditions": {}}
    for crop in CROPS:
        rng = np.random.default_rng([seed, 6, int((crop or 0) * 1000)])
        t0 = time.perf_counter()
        emb = {i: _embed(backend, corpus, segs[i], crop, rng) for i in used}
        wall = time.perf_counter() - t0
        scores = np.array([float(np.dot(emb[a], emb[b])) for a, b, _ in trials])
        tgt, non = scores[labels], scores[~labels]
        results["conditions"]["full" if crop is None else f"{crop:g}s"] = {
            "eer": eer(tgt, non),
            **{f"min_dcf_p{p:g}": min_dcf(tgt, non, p) for p in P_TARGETS},
            "embed_wall_s": round(wall, 2),
        }
    return results


def _embed(backend: Any, corpus: Corpus, seg: Segment, crop: float | None, rng: np.random.Generator) -> np.ndarray:
    audio, _ = corpus.load(seg.uid)
    a, b = seg.start, seg.end
    if crop is not None and b - a > int(crop * SR):
        a = a + int(rng.integers(0, b - a - int(crop * SR) + 1))
        b = a + int(crop * SR)
    vec = np.asarray(backend.embed(np.ascontiguousarray(audio[a:b], dtype=np.float32)), dtype=np.float32)
    return vec / max(float(np.linalg.norm(vec)), 1e-12)
