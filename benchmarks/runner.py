"""Runs the systems over the sets, scores them, prints Rich tables and writes ``<out>/<set>.json`` + a summary."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from pyannote.core import Annotation
from rich.console import Console
from rich.table import Table

from diarize.config import PipelineConfig
from diarize.result import annotation_to_rttm, read_rttm

from . import REPO_ROOT, cache_root, datasets, trials
from .baselines import BASELINE_VERSION, ResemblyzerSpectral
from .datasets import Item
from .metrics import Scorer, overlap_share

SETS = ("sim", "ami", "calls", "long", "embeddings")
SYSTEMS = ("ours", "oracle-kmeans", "baseline")
QUICK = {"sim": 6, "ami": ["trn05", "trn08", "trn09"], "calls": 3, "long": ["long-10m"],
         "trials": {"single_readers": 40, "max_target": 150, "n_nontarget": 3000}}

console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass
class Options:
    sets: tuple[str, ...] = SETS
    systems: tuple[str, ...] = SYSTEMS
    quick: bool = False
    out: Path = REPO_ROOT / "benchmarks" / "results"
    config: PipelineConfig = field(default_factory=PipelineConfig)
    seed: int = datasets.SEED
    fresh_baselines: bool = False


class Ours:
    """Our pipeline; with ``oracle`` it is told the true speaker count (use with k-means)."""

    def __init__(self, name: str, config: PipelineConfig, oracle: bool = False) -> None:
        from diarize.pipeline import DiarizationPipeline

        self.name, self.oracle = name, oracle
        t0 = time.perf_counter()
        self.pipe = DiarizationPipeline(config)
        self.load_s = time.perf_counter() - t0

    def __call__(self, item: Item) -> tuple[Annotation, float, dict[str, Any]]:
        t0 = time.perf_counter()
        result = self.pipe(str(item.audio), num_speakers=item.num_speakers if self.oracle else None)
        wall = time.perf_counter() - t0
        return _renamed(result.to_annotation(), item.uri), wall, {}


class Baseline:
    """Resemblyzer + spectralcluster; hypotheses are cached per audio checksum (the baseline never changes)."""

    name = "baseline"

    def __init__(self, config: PipelineConfig, fresh: bool) -> None:
        t0 = time.perf_counter()
        self.system = ResemblyzerSpectral(config.vad)
        self.load_s = time.perf_counter() - t0
        self.fresh = fresh
        self.key_extra = f"v{BASELINE_VERSION}:{config.vad.model_dump_json()}"

    def __call__(self, item: Item) -> tuple[Annotation, float, dict[str, Any]]:
        key = hashlib.sha256((_file_sha(item.audio) + self.key_extra).encode()).hexdigest()[:16]
        path = cache_root() / "baseline" / f"{item.uri}.{key}.rttm"
        if path.exists() and not self.fresh:
            wall = json.loads(path.with_suffix(".json").read_text())["wall_s"]
            return read_rttm(path).get(item.uri, Annotation(uri=item.uri)), wall, {"cached": True}
        t0 = time.perf_counter()
        ann = self.system(str(item.audio), item.uri)
        wall = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(annotation_to_rttm(ann))
        path.with_suffix(".json").write_text(json.dumps({"wall_s": wall}))
        return ann, wall, {"cached": False}


def run(opts: Options) -> dict[str, Any]:
    """Run every requested set; returns the summary (also written to ``<out>/summary.json`` and ``summary.md``)."""
    opts.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    systems = _load_systems(opts) if set(opts.sets) & {"sim", "ami", "calls", "embeddings"} else {}
    summary: dict[str, Any] = {"meta": _meta(opts), "sets": {}}
    for name in opts.sets:
        t0 = time.perf_counter()
        for set_name, result in _run_set(name, opts, systems):
            result.update(meta=summary["meta"], wall_s=round(time.perf_counter() - t0, 1))
            (opts.out / f"{set_name}.json").write_text(json.dumps(result, indent=1, default=float))
            summary["sets"][set_name] = _brief(result)
            _print_set(set_name, result)
            t0 = time.perf_counter()
    summary["meta"]["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    (opts.out / "summary.md").write_text(summary_markdown(summary))
    console.print(f"[bold]done in {summary['meta']['total_wall_s']:.0f} s[/]; results in {opts.out}")
    return summary


def _load_systems(opts: Options) -> dict[str, Any]:
    systems: dict[str, Any] = {}
    if "ours" in opts.systems or "embeddings" in opts.sets:
        systems["ours"] = Ours("ours", opts.config)
    if "oracle-kmeans" in opts.systems:
        clustering = opts.config.clustering.model_copy(update={"method": "kmeans", "oversplit": 1.0})
        kmeans = opts.config.model_copy(update={"clustering": clustering})
        systems["oracle-kmeans"] = Ours("oracle-kmeans", kmeans, oracle=True)
    if "baseline" in opts.systems:
        systems["baseline"] = Baseline(opts.config, opts.fresh_baselines)
    for s in systems.values():
        console.log(f"loaded {s.name} in {s.load_s:.2f} s")
    return systems


def _run_set(name: str, opts: Options, systems: dict[str, Any]):
    q = opts.quick
    if name == "sim":
        for split in ("tune", "heldout"):
            items = datasets.sim_items(split, QUICK["sim"] if q else None, opts.seed)
            yield ("sim" if split == "tune" else "sim-heldout"), diarization_set(items, systems, opts)
    elif name == "ami":
        yield name, diarization_set(datasets.ami_items(QUICK["ami"] if q else None), systems, opts)
    elif name == "calls":
        items = datasets.call_items(QUICK["calls"] if q else None, opts.seed)
        yield name, diarization_set(items, systems, opts)
        if "ours" in systems and "ours" in opts.systems:
            yield "calls-channels", channel_set(items, systems["ours"].pipe)
    elif name == "long":
        yield name, long_set(datasets.long_items(QUICK["long"] if q else None, opts.seed), opts)
    elif name == "embeddings":
        backend = systems["ours"].pipe.embedding_backend
        kwargs: dict[str, Any] = QUICK["trials"] if q else {}
        res = trials.evaluate(backend, datasets.corpus(), opts.seed, **kwargs)
        yield name, {"set": name, "backend": getattr(backend, "model_id", type(backend).__name__), **res}
    else:
        raise ValueError(f"unknown set {name!r}; choose from {', '.join(SETS)}")


def diarization_set(items: list[Item], systems: dict[str, Any], opts: Options) -> dict[str, Any]:
    """Every selected system on every item, scored with :class:`Scorer`."""
    scorers = {n: Scorer() for n in systems if n in opts.systems}
    for item in items:
        for n in scorers:
            ann, wall, extra = systems[n](item)
            _save_hyp(item, n, ann)
            row = scorers[n].add(item.reference, ann, item.uem, item.num_speakers, wall, item.duration, **extra)
            console.log(f"{item.uri:>16} {n:>14}: DER {row['der']:6.1%}  spk {row['pred_speakers']}/"
                        f"{row['true_speakers']}  {wall:5.1f} s")
    return {"dataset": dataset_info(items),
            "systems": {n: {"load_s": round(systems[n].load_s, 3), **s.summary(), "per_file": s.files}
                        for n, s in scorers.items()}}


def channel_set(items: list[Item], pipeline: Any) -> dict[str, Any]:
    """Each stereo call diarized per channel, each channel scored against its own speaker's reference:
    ``ours-multichannel`` (``MultichannelDiarizer``: crosstalk gate, bleed utterances dropped) and
    ``ours-channel-alone`` (the pipeline on one channel as if it were mono, bleed and all)."""
    from diarize.audio import Audio, load_audio
    from diarize.multichannel import MultichannelDiarizer

    multichannel = MultichannelDiarizer(pipeline)
    scorers = {"ours-multichannel": Scorer(), "ours-channel-alone": Scorer()}
    for item in items:
        audio = load_audio(item.audio, pipeline.config.audio, mono=False)
        t0 = time.perf_counter()
        gated = multichannel(audio)
        wall = time.perf_counter() - t0
        for c, reference in enumerate(item.channel_references):
            hypotheses = {
                "ours-multichannel": (_channel_annotation(gated.utterances, c + 1, reference.uri), wall / 2),
            }
            t0 = time.perf_counter()
            alone = pipeline(Audio(audio.samples[c : c + 1].copy(), audio.sample_rate))
            hypotheses["ours-channel-alone"] = (_renamed(alone.to_annotation(), reference.uri),
                                                time.perf_counter() - t0)
            for n, (ann, seconds) in hypotheses.items():
                row = scorers[n].add(reference, ann, item.uem, len(reference.labels()), seconds, item.duration)
                console.log(f"{reference.uri:>16} {n:>18}: DER {row['der']:6.1%}  spk {row['pred_speakers']}/"
                            f"{row['true_speakers']}")
    channel_items = [Item(r.uri, item.audio, r, item.uem, item.duration) for item in items
                     for r in item.channel_references]
    return {"dataset": dataset_info(channel_items),
            "systems": {n: {"load_s": 0.0, **s.summary(), "per_file": s.files} for n, s in scorers.items()}}


def _channel_annotation(utterances: list[Any], channel: int, uri: str) -> Annotation:
    from pyannote.core import Segment

    ann = Annotation(uri=uri)
    for i, u in enumerate(utterances):
        if u.channel == channel:
            ann[Segment(u.start, u.end), i] = u.speaker
    return ann


def long_set(items: list[Item], opts: Options) -> dict[str, Any]:
    """Our pipeline on each long file in a fresh subprocess: RTF, model load, peak RSS, DER."""
    scorer = Scorer()
    load = []
    cfg_path = cache_root() / "probe-config.json"
    cfg_path.write_text(opts.config.model_dump_json())
    for item in items:
        rttm = cache_root() / "hyp" / "long" / f"{item.uri}.ours.rttm"
        rttm.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.probe", str(item.audio), "--rttm", str(rttm),
                               "--config", str(cfg_path)], cwd=REPO_ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"probe failed on {item.uri}:\n{proc.stderr[-3000:]}")
        probe = json.loads(proc.stdout.strip().splitlines()[-1])
        hyp = read_rttm(rttm).get(item.uri, Annotation(uri=item.uri))
        row = scorer.add(item.reference, hyp, item.uem, item.num_speakers, probe["wall_s"], item.duration,
                         peak_rss_mb=round(probe["peak_rss_mb"], 1),
                         rss_after_load_mb=round(probe["rss_after_load_mb"], 1),
                         load_s=round(probe["load_s"], 3))
        load.append(probe["load_s"])
        console.log(f"{item.uri:>16} {'ours':>14}: RTF {row['rtf']:.4f}  peak RSS {row['peak_rss_mb']:.0f} MB  "
                    f"DER {row['der']:.1%}")
    return {"dataset": dataset_info(items),
            "systems": {"ours": {"load_s": round(sum(load) / max(len(load), 1), 3), **scorer.summary(),
                                 "per_file": scorer.files}}}


def dataset_info(items: list[Item]) -> dict[str, Any]:
    speech = overlap = 0.0
    counts: dict[str, int] = {}
    for it in items:
        ref = it.reference.crop(it.uem)
        s = ref.get_timeline().support().duration()
        speech += s
        overlap += overlap_share(ref) * s
        counts[str(it.num_speakers)] = counts.get(str(it.num_speakers), 0) + 1
    return {"files": len(items), "hours": round(sum(it.duration for it in items) / 3600, 3),
            "speech_hours": round(speech / 3600, 3), "overlap_share_of_speech": overlap / speech if speech else 0.0,
            "files_per_speaker_count": dict(sorted(counts.items(), key=lambda kv: int(kv[0]))),
            "noisy_files": sum(bool(it.info.get("noisy")) for it in items)}


def _save_hyp(item: Item, system: str, ann: Annotation) -> None:
    path = cache_root() / "hyp" / f"{item.uri}.{system}.rttm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(annotation_to_rttm(ann))


def _renamed(ann: Annotation, uri: str) -> Annotation:
    ann = ann.copy()
    ann.uri = uri
    return ann


_SHA: dict[Path, str] = {}


def _file_sha(path: Path) -> str:
    if path not in _SHA:
        meta = path.with_suffix(".json")
        if meta.exists():
            _SHA[path] = json.loads(meta.read_text())["sha256"]
        else:
            _SHA[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _SHA[path]


def _meta(opts: Options) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"commit": commit, "quick": opts.quick, "seed": opts.seed, "sets": list(opts.sets),
            "systems": list(opts.systems), "config": opts.config.model_dump(mode="json"),
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    if "conditions" in result:
        return {"backend": result["backend"], **result["conditions"]}
    keep = ("files", "hours", "der", "der_forgiving", "miss", "false_alarm", "confusion", "jer", "count_exact",
            "count_mae", "rtf", "load_s")
    out = {n: {k: s[k] for k in keep if k in s} for n, s in result["systems"].items()}
    for n, s in result["systems"].items():
        if s.get("per_file") and "peak_rss_mb" in s["per_file"][0]:
            fields = ("uri", "duration", "rtf", "wall_s", "peak_rss_mb", "load_s", "der")
            out[n]["long_files"] = [{k: r[k] for k in fields} for r in s["per_file"]]
    return {"overlap_share_of_speech": result["dataset"]["overlap_share_of_speech"], "systems": out}


_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("files", "Files", str), ("der", "DER", lambda v: f"{v:.1%}"), ("der_forgiving", "DER fgv", lambda v: f"{v:.1%}"),
    ("miss", "Miss", lambda v: f"{v:.1%}"), ("false_alarm", "FA", lambda v: f"{v:.1%}"),
    ("confusion", "Conf", lambda v: f"{v:.1%}"), ("jer", "JER", lambda v: f"{v:.1%}"),
    ("count_exact", "Count ok", lambda v: f"{v:.0%}"), ("count_mae", "Count MAE", lambda v: f"{v:.2f}"),
    ("rtf", "RTF", lambda v: f"{v:.4f}"), ("load_s", "Load s", lambda v: f"{v:.2f}"),
]


def _print_set(name: str, result: dict[str, Any]) -> None:
    if "conditions" in result:
        table = Table(title=f"embeddings ({result['backend']}): {result['target_trials']} target / "
                            f"{result['nontarget_trials']} non-target trials")
        for col in ("Condition", "EER", "minDCF p=0.01", "minDCF p=0.05"):
            table.add_column(col, justify="right")
        for cond, r in result["conditions"].items():
            table.add_row(cond, f"{r['eer']:.2%}", f"{r['min_dcf_p0.01']:.3f}", f"{r['min_dcf_p0.05']:.3f}")
        console.print(table)
        return
    ds = result["dataset"]
    table = Table(title=f"{name}: {ds['files']} files, {ds['hours']:.2f} h, "
                        f"overlap {ds['overlap_share_of_speech']:.1%} of speech")
    table.add_column("System")
    for _, title, _ in _COLUMNS:
        table.add_column(title, justify="right")
    for sys_name, s in result["systems"].items():
        table.add_row(sys_name, *(fmt(s[k]) if k in s else "" for k, _, fmt in _COLUMNS))
    console.print(table)
    if name == "long":
        t = Table(title="long: speed and memory (fresh process per file)")
        for col in ("File", "Hours", "RTF", "Wall s", "Peak RSS MB", "DER"):
            t.add_column(col, justify="right")
        for r in result["systems"]["ours"]["per_file"]:
            t.add_row(r["uri"], f"{r['duration'] / 3600:.2f}", f"{r['rtf']:.4f}", f"{r['wall_s']:.1f}",
                      f"{r['peak_rss_mb']:.0f}", f"{r['der']:.1%}")
        console.print(t)
    elif name.startswith("sim"):
        t = Table(title=f"{name}: by true speaker count (DER / exact-count rate / count MAE)")
        t.add_column("Speakers")
        for sys_name in result["systems"]:
            t.add_column(sys_name, justify="right")
        counts = next(iter(result["systems"].values())).get("per_count", {})
        for k in counts:
            t.add_row(k, *(f"{s['per_count'][k]['der']:.1%} / {s['per_count'][k]['count_exact']:.0%} / "
                           f"{s['per_count'][k]['count_mae']:.2f}" for s in result["systems"].values()))
        console.print(t)


def summary_markdown(summary: dict[str, Any]) -> str:
    """Markdown tables of the summary (for pasting into ``benchmarks/README.md``)."""
    meta = summary["meta"]
    lines = [f"Commit {meta['commit']}, {'quick' if meta['quick'] else 'full'} run, seed {meta['seed']}, "
             f"{meta['machine']['cpus']} CPUs, torch threads {meta['machine']['torch_threads']}, "
             f"total {meta.get('total_wall_s', 0):.0f} s.", ""]
    lines += ["| Set | System | Files | DER | DER forgiving | Miss | FA | Confusion | JER | Count exact | Count MAE "
              "| RTF |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for set_name, s in summary["sets"].items():
        for sys_name, r in s.get("systems", {}).items():
            lines.append(f"| {set_name} | {sys_name} | {r['files']} | {r['der']:.1%} | {r['der_forgiving']:.1%} | "
                         f"{r['miss']:.1%} | {r['false_alarm']:.1%} | {r['confusion']:.1%} | {r['jer']:.1%} | "
                         f"{r['count_exact']:.0%} | {r['count_mae']:.2f} | {r['rtf']:.4f} |")
    long_files = summary["sets"].get("long", {}).get("systems", {}).get("ours", {}).get("long_files", [])
    if long_files:
        lines += ["", "| Long file | Hours | RTF | Wall s | Peak RSS MB | Model load s | DER |",
                  "|---|---|---|---|---|---|---|"]
        for r in long_files:
            lines.append(f"| {r['uri']} | {r['duration'] / 3600:.2f} | {r['rtf']:.4f} | {r['wall_s']:.1f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['load_s']:.2f} | {r['der']:.1%} |")
    emb = summary["sets"].get("embeddings")
    if emb:
        lines += ["", f"Embeddings ({emb['backend']}):", "", "| Condition | EER | minDCF p=0.01 | minDCF p=0.05 |",
                  "|---|---|---|---|"]
        for cond, r in emb.items():
            if isinstance(r, dict):
                lines.append(f"| {cond} | {r['eer']:.2%} | {r['min_dcf_p0.01']:.3f} | {r['min_dcf_p0.05']:.3f} |")
    return "\n".join(lines) + "\n"
