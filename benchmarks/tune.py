"""Grid search over the cheap half of the pipeline (clustering, reconstruction) on cached embeddings.

The expensive half (``neural``: segmentation and local-speaker embeddings; ``windows``: VAD and window
embeddings) runs once per file for the given front-end configuration; every grid point then re-clusters and
re-scores in seconds. Use it on ``sim`` (tune) and confirm on ``sim-heldout``:

    python -m benchmarks.tune --split tune --grid '{"speaker_clustering.threshold": [0.5, 0.6, 0.7]}'
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from typing import Any

import numpy as np
from pyannote.core import Annotation

from diarize.audio import load_audio
from diarize.config import PipelineConfig
from diarize.local_embeddings import LocalTurns
from diarize.pipeline import DiarizationPipeline, LocalSpeakers, SpeechEmbeddings, label_local_speakers, label_speakers
from diarize.result import annotation_from_utterances
from diarize.segmentation import Windows
from diarize.speaker_clustering import resolve
from diarize.speaker_count import speaker_bounds
from diarize.speaker_segmentation import ChunkSegmentation

from . import cache_root
from .datasets import Item, ami_items, call_items, sim_items
from .metrics import Scorer


def with_overrides(config: PipelineConfig, overrides: dict[str, Any]) -> PipelineConfig:
    """``{"clustering.merge_threshold": 0.7}`` applied to a copy of ``config``."""
    data = config.model_dump()
    for dotted, value in overrides.items():
        section, field = dotted.split(".")
        data[section][field] = value
    return PipelineConfig.model_validate(data)


def items_of(name: str) -> list[Item]:
    if name in ("tune", "heldout"):
        return sim_items(name)
    return call_items() if name == "calls" else ami_items()


def _cached_npz(items: list[Item], base: PipelineConfig, gain_db: float, key: str, folder_name: str,
                compute: Any) -> list[Any]:
    """One ``.npz`` per file under a folder keyed by ``key`` (version + front-end configuration) and ``gain_db``;
    missing files are made with ``compute(pipeline, audio) -> dict of arrays``; returns the loaded files."""
    key += f"gain{gain_db:g}" if gain_db else ""
    folder = cache_root() / folder_name / hashlib.sha256(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    pipeline = None
    out = []
    for n, item in enumerate(items, 1):
        path = folder / f"{item.uri}.npz"
        if not path.exists():
            pipeline = pipeline or DiarizationPipeline(base)
            audio = load_audio(item.audio, base.audio)
            np.multiply(audio.samples, np.float32(10 ** (gain_db / 20)), out=audio.samples)
            np.savez(path, **compute(pipeline, audio))
            print(f"front end {n}/{len(items)}: {item.uri}", flush=True)
        out.append(np.load(path))
    return out


def cached_features(items: list[Item], base: PipelineConfig, gain_db: float = 0.0) -> list[SpeechEmbeddings]:
    """Front-end output per file, kept on disk per front-end configuration (VAD, windows, embedding),
    cache layout (``v2``: with frame energies) and ``gain_db`` applied to the audio (a quieter or louder
    recording of the same files)."""

    def compute(pipeline: DiarizationPipeline, audio: Any) -> dict[str, Any]:
        f = pipeline.embed_speech(audio)
        return dict(regions=f.regions, starts=f.windows.starts, ends=f.windows.ends, region=f.windows.region,
                    embeddings=f.embeddings, duration=f.duration, energies_db=f.energies_db)

    key = "v2" + base.model_dump_json(include={"audio", "vad", "segmentation", "embedding"})
    return [SpeechEmbeddings(d["regions"], Windows(d["starts"], d["ends"], d["region"]), d["embeddings"],
                             float(d["duration"]), d["energies_db"])
            for d in _cached_npz(items, base, gain_db, key, "features", compute)]


def cached_local_speakers(items: list[Item], base: PipelineConfig, gain_db: float = 0.0) -> list[LocalSpeakers]:
    """``neural`` front end per file (segmentation + local-turn embeddings), kept on disk per configuration."""

    def compute(pipeline: DiarizationPipeline, audio: Any) -> dict[str, Any]:
        local = pipeline.segment_speakers(audio)
        seg, turns = local.segmentation, local.turns
        return dict(activity=seg.activity, chunk_starts=seg.chunk_starts, chunk_duration=seg.chunk_duration,
                    frame_step=seg.frame_step, frame_duration=seg.frame_duration, duration=seg.duration,
                    speech=local.speech if local.speech is not None else np.zeros((0, 2)),
                    has_speech=local.speech is not None, energies_db=local.energies_db,
                    **{f"turn_{name}": getattr(turns, name) for name in LocalTurns.__dataclass_fields__})

    key = "n4" + base.model_dump_json(include={"audio", "neural_segmentation", "embedding", "vad"})
    out = []
    for d in _cached_npz(items, base, gain_db, key, "local-speakers", compute):
        seg = ChunkSegmentation(activity=d["activity"], log_probs=None, chunk_starts=d["chunk_starts"],
                                chunk_duration=float(d["chunk_duration"]), frame_step=float(d["frame_step"]),
                                frame_duration=float(d["frame_duration"]), duration=float(d["duration"]))
        turns = LocalTurns(**{name: d[f"turn_{name}"] for name in LocalTurns.__dataclass_fields__})
        out.append(LocalSpeakers(seg, turns, d["speech"] if d["has_speech"] else None, d["energies_db"]))
    return out


def score_grid(
    items: list[Item], base: PipelineConfig, grid: dict[str, list[Any]], count_hint: bool = False,
    gain_db: float = 0.0,
) -> list[dict[str, Any]]:
    """One summary row per grid point (front end computed once per file with ``base``); with ``count_hint``
    each file is clustered given its true speaker count, as a user passing ``num_speakers`` would."""
    neural = base.method == "neural"
    features = (cached_local_speakers if neural else cached_features)(items, base, gain_db)
    model_id = _model_id(base)
    rows = []
    for values in itertools.product(*grid.values()):
        overrides = dict(zip(grid, values))
        config = with_overrides(base, overrides)
        scorer = Scorer()
        for item, feats in zip(items, features):
            duration = feats.segmentation.duration if neural else feats.duration
            bounds = speaker_bounds(duration, num_speakers=item.num_speakers if count_hint else None)
            if neural:
                utterances, _ = label_local_speakers(feats, bounds, resolve(config.speaker_clustering, model_id),
                                                     config.reconstruction)
            else:
                utterances, _ = label_speakers(feats, bounds, config.clustering, config.postprocess)
            hypothesis: Annotation = annotation_from_utterances(utterances, item.uri)
            scorer.add(item.reference, hypothesis, item.uem, item.num_speakers, 0.0, item.duration)
        summary = scorer.summary()
        rows.append({**overrides, **{k: summary[k] for k in ("der", "der_forgiving", "miss", "false_alarm", "confusion")},
                     "count_exact": summary.get("count_exact"), "count_mae": summary.get("count_mae")})
        print(json.dumps(rows[-1], default=lambda v: round(v, 4)), flush=True)
    return rows


def _model_id(config: PipelineConfig) -> str:
    """The embedding model id of ``config``'s backend."""
    from diarize.embeddings import load_backend

    return load_backend(config.embedding).model_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tune", help="tune, heldout, calls or ami")
    parser.add_argument("--config", help="base PipelineConfig JSON (front end and defaults)")
    parser.add_argument("--grid", default="{}", help='JSON {"section.field": [values]}')
    parser.add_argument("--count-hint", action="store_true", help="give the clustering each file's true speaker count")
    parser.add_argument("--gain-db", type=float, default=0.0, help="scale every file by this gain first (dB)")
    args = parser.parse_args()
    base = PipelineConfig.model_validate_json(open(args.config).read()) if args.config else PipelineConfig()
    score_grid(items_of(args.split), base, json.loads(args.grid), args.count_hint, args.gain_db)


if __name__ == "__main__":
    main()
