"""Speed of giving transcript words to diarized utterances: 100k words against 5k utterances by default.

``python -m benchmarks.word_assignment [--words N] [--segments M] [--repeats R]`` prints the best of R runs of
the sweep alone (``attribute_words``) and of the whole step (``attach_transcript``: objects in, utterances
with text out), and checks the sweep against brute force on a sample.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from diarize.identity.transcript import Word, attach_transcript, attribute_words
from diarize.result import Utterance


@dataclass(frozen=True)
class Timing:
    words: int
    segments: int
    sweep_s: float
    attach_s: float


def synthetic(num_words: int, num_segments: int, seed: int = 0) -> tuple[list[Word], list[Utterance]]:
    """A long two-channel call: utterances alternate with pauses, 10% overlap the previous one; ~3 words/s
    inside them and a few words in the pauses."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(1.0, 14.0, num_segments)
    gaps = rng.uniform(0.1, 1.5, num_segments)
    overlap = rng.random(num_segments) < 0.1
    starts = np.cumsum(np.r_[0.0, (lengths + gaps)[:-1]]) - np.where(overlap, rng.uniform(0.2, 1.0, num_segments), 0)
    starts = np.maximum(starts, 0.0)
    ends = starts + lengths
    utterances = [Utterance("AB"[i % 2], float(s), float(e), channel=i % 2 + 1) for i, (s, e) in
                  enumerate(zip(starts, ends))]
    owner = rng.choice(num_segments, num_words, p=lengths / lengths.sum())
    word_starts = np.sort(starts[owner] + rng.uniform(0, 1, num_words) * lengths[owner] + rng.normal(0, 0.3, num_words))
    word_starts = np.maximum(word_starts, 0.0)
    durations = rng.uniform(0.1, 0.6, num_words)
    words = [Word(f"w{i}", float(a), float(a + d)) for i, (a, d) in enumerate(zip(word_starts, durations))]
    return words, utterances


def measure(num_words: int = 100_000, num_segments: int = 5_000, repeats: int = 3, seed: int = 0) -> Timing:
    words, utterances = synthetic(num_words, num_segments, seed)
    ws = np.array([w.start for w in words])
    we = np.array([w.end for w in words])
    us = np.array([u.start for u in utterances])
    ue = np.array([u.end for u in utterances])
    sweep = attach = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        attribute_words(ws, we, us, ue)
        sweep = min(sweep, time.perf_counter() - t)
        t = time.perf_counter()
        attach_transcript(utterances, words)
        attach = min(attach, time.perf_counter() - t)
    return Timing(num_words, num_segments, sweep, attach)


def check_against_brute_force(sample: int = 2_000, num_segments: int = 5_000, seed: int = 1) -> bool:
    """The sweep's choice overlaps each word exactly as much as the best interval found by brute force."""
    words, utterances = synthetic(sample, num_segments, seed)
    ws = np.array([w.start for w in words])
    we = np.maximum(np.array([w.end for w in words]), ws + 1e-6)
    us = np.array([u.start for u in utterances])
    ue = np.array([u.end for u in utterances])
    got = attribute_words(ws, we, us, ue, max_gap=np.inf)
    for i in range(sample):
        overlap = np.minimum(ue, we[i]) - np.maximum(us, ws[i])
        j = got[i]
        if overlap.max() > 0 and not np.isclose(min(ue[j], we[i]) - max(us[j], ws[i]), overlap.max()):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    timing = measure(args.words, args.segments, args.repeats)
    print(f"{timing.words} words x {timing.segments} utterances: sweep {timing.sweep_s * 1000:.1f} ms, "
          f"attach_transcript {timing.attach_s * 1000:.1f} ms (best of {args.repeats})")
    print(f"agrees with brute force on a 2000-word sample: {check_against_brute_force()}")


if __name__ == "__main__":
    main()
