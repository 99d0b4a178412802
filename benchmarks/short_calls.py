"""Speaker count on short two-speaker recordings (voicemails, call snippets), where few windows decide.

``python -m benchmarks.short_calls [--pairs 30] [--config cfg.json] [--set clustering.min_cluster_windows=2]``
builds ``2 × pairs`` conversations from distinct LibriSpeech train-clean-100 readers: half are 10 s
(5 s each, A then B), half about 25 s (A, B, A). It prints how often the pipeline finds exactly two speakers,
more, or fewer, per length. ``--set`` overrides one setting (repeatable) to compare against the defaults in
the same run.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import soundfile as sf

from diarize.audio import Audio
from diarize.config import PipelineConfig
from diarize.pipeline import DiarizationPipeline

from . import require_data
from .speech import SR, energy_threshold, speech_bounds


def _trimmed(path: Any) -> np.ndarray:
    x = sf.read(path, dtype="float32")[0]
    bounds = speech_bounds(x, energy_threshold(x))
    return x[bounds[0] : bounds[1]] if bounds else x


def conversations(pairs: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``(kind, audio)`` with kind ``10s`` or ``25s``; turns separated by 0.4-1.0 s of silence."""
    files = sorted((require_data() / "librispeech" / "train-clean-100").glob("*.flac"))[: 4 * pairs]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(0, len(files) - 1, 2):
        a, b = _trimmed(files[i]), _trimmed(files[i + 1])
        if (i // 2) % 2 == 0:
            kind, turns = "10s", [a[: 5 * SR], b[: 5 * SR]]
        else:
            half = min(len(a) // 2, 8 * SR)
            kind, turns = "25s", [a[:half], b[: 10 * SR], a[half : 2 * half]]
        pieces = []
        for turn in turns:
            pieces += [np.zeros(int(rng.uniform(0.4, 1.0) * SR), np.float32), turn]
        out.append((kind, np.concatenate([*pieces, np.zeros(SR // 2, np.float32)])))
    return out


def count_rates(config: PipelineConfig, audio: list[tuple[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per kind: share of files with exactly two speakers found, more, and fewer."""
    pipeline = DiarizationPipeline(config)
    found: dict[str, list[int]] = {}
    for kind, samples in audio:
        found.setdefault(kind, []).append(len(pipeline(Audio(samples[None], SR)).speakers))
    return {kind: {"files": len(c), "exact": float(np.mean(np.array(c) == 2)), "over": float(np.mean(np.array(c) > 2)),
                   "under": float(np.mean(np.array(c) < 2))} for kind, c in found.items()}


def with_setting(config: PipelineConfig, assignment: str) -> PipelineConfig:
    dotted, value = assignment.split("=", 1)
    section, field = dotted.split(".")
    data = config.model_dump()
    data[section][field] = json.loads(value)
    return PipelineConfig.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30, help="conversations of each length")
    parser.add_argument("--config", help="PipelineConfig JSON (default: the defaults)")
    parser.add_argument("--set", action="append", default=[], help="section.field=JSON value, compared with the base")
    args = parser.parse_args()
    base = PipelineConfig.model_validate_json(open(args.config).read()) if args.config else PipelineConfig()
    audio = conversations(args.pairs)
    for label, config in [("base", base), *[(s, with_setting(base, s)) for s in args.set]]:
        for kind, rates in sorted(count_rates(config, audio).items()):
            print(f"{label:40s} {kind}: {rates['files']} files, two speakers {rates['exact']:.0%}, "
                  f"more {rates['over']:.0%}, fewer {rates['under']:.0%}", flush=True)


if __name__ == "__main__":
    main()
