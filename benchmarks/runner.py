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
from .senko_peer import OUTPUT as SENKO_OUTPUT
from .senko_peer import WRAPPER_VERSION as SENKO_WRAPPER_VERSION
from .senko_peer import SenkoPeer, senko_status, senko_wav

SETS = ("sim", "ami", "calls", "long", "embeddings")
SYSTEMS = ("ours", "oracle-count", "fast", "baseline", "senko")
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
        t0, c0 = time.perf_counter(), time.process_time()
        result = self.pipe(str(item.audio), num_speakers=item.num_speakers if self.oracle else None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return _renamed(result.to_annotation(), item.uri), wall, {"cpu_s": round(cpu, 3)}


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


class Senko:
    """The peer system senko (``benchmarks/senko_peer.py``), scored on its ``merged_segments``.

    Like :class:`Baseline`, its hypotheses (with wall and CPU seconds) are cached per audio checksum, senko version
    and wrapper version in ``benchmarks/cache/senko/``; ``--fresh-baselines`` recomputes them. The model is loaded
    only when a hypothesis is not cached; ``load_s`` is then the last measured load time (``load.json``).
    """

    name = "senko"

    def __init__(self, version: str, threads: int, fresh: bool) -> None:
        self.version, self.threads, self.fresh = version, threads, fresh
        self.key_extra = f"senko {version}:wrapper v{SENKO_WRAPPER_VERSION}:{SENKO_OUTPUT}"
        self._peer: SenkoPeer | None = None
        load = cache_root() / "senko" / "load.json"
        self.load_s = json.loads(load.read_text())["load_s"] if load.exists() else 0.0

    @property
    def peer(self) -> SenkoPeer:
        if self._peer is None:
            self._peer = SenkoPeer(self.threads)
            self.load_s = self._peer.load_s
            self.store_load(self.load_s)
            console.log(f"loaded senko {self.version} on {self._peer.device} in {self.load_s:.2f} s "
                        f"({self.threads} threads)")
        return self._peer

    def store_load(self, load_s: float) -> None:
        path = cache_root() / "senko" / "load.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"load_s": load_s, "threads": self.threads, "senko": self.version}))

    def cache_path(self, audio: Path, uri: str, channel: int | None = None) -> Path:
        extra = self.key_extra + (f":channel {channel}" if channel is not None else "")
        key = hashlib.sha256((_file_sha(audio) + extra).encode()).hexdigest()[:16]
        return cache_root() / "senko" / f"{uri}.{key}.rttm"

    def cached(self, path: Path, uri: str) -> tuple[Annotation, dict[str, Any]] | None:
        meta_path = path.with_suffix(".json")
        if self.fresh or not (path.exists() and meta_path.exists()):
            return None
        return read_rttm(path).get(uri, Annotation(uri=uri)), json.loads(meta_path.read_text())

    def store(self, path: Path, ann: Annotation, meta: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(annotation_to_rttm(ann))
        path.with_suffix(".json").write_text(json.dumps({"senko": self.version, "scored": SENKO_OUTPUT, **meta}))

    def run(self, audio: Path, uri: str, channel: int | None = None) -> tuple[Annotation, float, dict[str, Any]]:
        path = self.cache_path(audio, uri, channel)
        hit = self.cached(path, uri)
        if hit is not None:
            ann, meta = hit
            return ann, meta["wall_s"], {"cached": True, **_senko_extra(meta)}
        out = self.peer(audio, uri, channel)
        meta = {k: v for k, v in out.items() if k != "annotation"}
        self.store(path, out["annotation"], meta)
        ann = read_rttm(path).get(uri, Annotation(uri=uri))  # as cached (ms), so later runs score the same
        return ann, out["wall_s"], {"cached": False, **_senko_extra(meta)}

    def __call__(self, item: Item) -> tuple[Annotation, float, dict[str, Any]]:
        return self.run(item.audio, item.uri)


def _senko_extra(meta: dict[str, Any]) -> dict[str, Any]:
    """The per-file row fields from a senko cache record (timings rounded like ``wall_s``)."""
    keys = ("cpu_s", "prep_s", "threads", "peak_rss_mb", "rss_after_load_mb", "load_s")
    return {k: round(meta[k], 3) if isinstance(meta[k], float) else meta[k] for k in keys if k in meta}


def run(opts: Options) -> dict[str, Any]:
    """Run every requested set; returns the summary (also written to ``<out>/summary.json`` and ``summary.md``)."""
    opts.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    systems = _load_systems(opts, models=bool(set(opts.sets) & {"sim", "ami", "calls", "embeddings"}))
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


def _threads(opts: Options) -> int:
    """The benchmark's thread count: ``--threads`` (``embedding.num_threads``), else all cores, as our pipeline."""
    return opts.config.embedding.num_threads or os.cpu_count() or 1


def _load_systems(opts: Options, models: bool = True) -> dict[str, Any]:
    """The selected systems; without ``models`` (only ``long`` asked: it runs in subprocesses) just senko's cache
    front, which loads nothing."""
    systems: dict[str, Any] = {}
    if "senko" in opts.systems:
        version, reason = senko_status()
        if version is None:
            console.print(f"[bold yellow]senko skipped:[/] {reason}")
        else:
            systems["senko"] = Senko(version, _threads(opts), opts.fresh_baselines)
            console.log(f"senko {version}: hypotheses cached per audio checksum in {cache_root() / 'senko'}; "
                        f"the model loads at the first uncached file ({_threads(opts)} threads)")
    if not models:
        return systems  # only `long` asked: senko's cache front, nothing loaded
    if "ours" in opts.systems or "embeddings" in opts.sets:
        systems["ours"] = Ours("ours", opts.config)
    if "oracle-count" in opts.systems:
        systems["oracle-count"] = Ours("oracle-count", opts.config, oracle=True)
    if "fast" in opts.systems:
        fast = PipelineConfig.preset("fast")
        fast = fast.model_copy(update={"embedding": fast.embedding.model_copy(
            update={"num_threads": opts.config.embedding.num_threads})})
        systems["fast"] = Ours("fast", fast)
    if "baseline" in opts.systems:
        systems["baseline"] = Baseline(opts.config, opts.fresh_baselines)
    for s in systems.values():
        if s.name != "senko":
            console.log(f"loaded {s.name} in {s.load_s:.2f} s")
    # One deliberate torch thread count for the run, whatever was built (silero_vad's import sets 1; senko sets
    # all cores when it loads, which SenkoPeer undoes, and our pipeline sets it only when it is built).
    torch.set_num_threads(_threads(opts))
    return {n: systems[n] for n in SYSTEMS if n in systems}  # table order: ours, oracle, baseline, senko


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
        channels = channel_set(items, systems, opts)
        if channels is not None:
            yield "calls-channels", channels
    elif name == "long":
        yield name, long_set(datasets.long_items(QUICK["long"] if q else None, opts.seed), opts, systems.get("senko"))
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


def channel_set(items: list[Item], systems: dict[str, Any], opts: Options) -> dict[str, Any] | None:
    """Each stereo call diarized per channel, each channel scored against its own speaker's reference:
    ``ours-multichannel`` (``MultichannelDiarizer``: crosstalk gate, bleed utterances dropped),
    ``ours-channel-alone`` (the pipeline on one channel as if it were mono, bleed and all) and
    ``senko-channel-alone`` (senko on one channel, likewise; cached like its other hypotheses).
    ``None`` when neither ours nor senko is selected."""
    run_ours = "ours" in systems and "ours" in opts.systems
    senko: Senko | None = systems.get("senko") if "senko" in opts.systems else None
    scorers = {n: Scorer() for n in ("ours-multichannel", "ours-channel-alone") if run_ours}
    if senko is not None:
        scorers["senko-channel-alone"] = Scorer()
    if not scorers:
        return None
    pipeline = multichannel = None
    if run_ours:
        from diarize.audio import Audio, load_audio
        from diarize.multichannel import MultichannelDiarizer

        pipeline = systems["ours"].pipe
        multichannel = MultichannelDiarizer(pipeline)
    for item in items:
        hypotheses: dict[str, list[tuple[Annotation, float, dict[str, Any]]]] = {n: [] for n in scorers}
        if run_ours:
            audio = load_audio(item.audio, pipeline.config.audio, mono=False)
            t0, c0 = time.perf_counter(), time.process_time()
            gated = multichannel(audio)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            for c, reference in enumerate(item.channel_references):
                hypotheses["ours-multichannel"].append(
                    (_channel_annotation(gated.utterances, c + 1, reference.uri), wall / 2,
                     {"cpu_s": round(cpu / 2, 3)}))
                t0, c0 = time.perf_counter(), time.process_time()
                alone = pipeline(Audio(audio.samples[c : c + 1].copy(), audio.sample_rate))
                hypotheses["ours-channel-alone"].append(
                    (_renamed(alone.to_annotation(), reference.uri), time.perf_counter() - t0,
                     {"cpu_s": round(time.process_time() - c0, 3)}))
        if senko is not None:
            for c, reference in enumerate(item.channel_references):
                hypotheses["senko-channel-alone"].append(senko.run(item.audio, reference.uri, channel=c))
        for n, per_channel in hypotheses.items():
            for reference, (ann, seconds, extra) in zip(item.channel_references, per_channel):
                _save_hyp_uri(reference.uri, n, ann)
                row = scorers[n].add(reference, ann, item.uem, len(reference.labels()), seconds, item.duration,
                                     **extra)
                console.log(f"{reference.uri:>16} {n:>19}: DER {row['der']:6.1%}  spk {row['pred_speakers']}/"
                            f"{row['true_speakers']}")
    channel_items = [Item(r.uri, item.audio, r, item.uem, item.duration) for item in items
                     for r in item.channel_references]
    load = {"senko-channel-alone": senko.load_s} if senko is not None else {}
    return {"dataset": dataset_info(channel_items),
            "systems": {n: {"load_s": round(load.get(n, 0.0), 3), **s.summary(), "per_file": s.files}
                        for n, s in scorers.items()}}


def _channel_annotation(utterances: list[Any], channel: int, uri: str) -> Annotation:
    from pyannote.core import Segment

    ann = Annotation(uri=uri)
    for i, u in enumerate(utterances):
        if u.channel == channel:
            ann[Segment(u.start, u.end), i] = u.speaker
    return ann


def long_set(items: list[Item], opts: Options, senko: Senko | None = None) -> dict[str, Any]:
    """Each long file in a fresh subprocess (``benchmarks.probe``): RTF, CPU time, model load, peak RSS, DER.

    Our pipeline runs when ``ours`` is selected, or when no system that runs here (ours, senko) is. senko runs
    when it is selected and importable (so only senko selected but missing gives no rows); its results are cached
    like its other hypotheses, and the probe is given a 16 kHz mono int16 WAV made beforehand (timed apart as
    ``prep_s``), so its peak RSS is senko's own."""
    run_ours = "ours" in opts.systems or not {"ours", "senko"} & set(opts.systems)
    scorers = {n: Scorer() for n, on in (("ours", run_ours), ("senko", senko is not None)) if on}
    load: dict[str, list[float]] = {n: [] for n in scorers}
    cfg_path = cache_root() / "probe-config.json"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(opts.config.model_dump_json())
    for item in items:
        rows: dict[str, tuple[Annotation, dict[str, Any]]] = {}
        if run_ours:
            rttm = cache_root() / "hyp" / "long" / f"{item.uri}.ours.rttm"
            rttm.parent.mkdir(parents=True, exist_ok=True)
            probe = _probe([str(item.audio), "--rttm", str(rttm), "--config", str(cfg_path)], item.uri)
            rows["ours"] = (read_rttm(rttm).get(item.uri, Annotation(uri=item.uri)),
                            {k: probe[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "rss_after_load_mb", "load_s")
                             if k in probe})
        if senko is not None:
            rows["senko"] = _senko_long(senko, item)
        for n, (hyp, probe) in rows.items():
            extra = {k: round(v, 3) if k != "wall_s" and isinstance(v, float) else v for k, v in probe.items()}
            wall = extra.pop("wall_s")
            if n == "senko":
                _save_hyp_uri(item.uri, "senko", hyp, "long")
            row = scorers[n].add(item.reference, hyp, item.uem, item.num_speakers, wall, item.duration, **extra)
            load[n].append(probe["load_s"])
            console.log(f"{item.uri:>16} {n:>14}: RTF {row['rtf']:.4f}  CPU {row.get('cpu_rtf', 0):.4f} s/s  "
                        f"peak RSS {row['peak_rss_mb']:.0f} MB  DER {row['der']:.1%}"
                        + ("  (cached)" if row.get("cached") else ""))
    return {"dataset": dataset_info(items),
            "systems": {n: {"load_s": round(sum(load[n]) / max(len(load[n]), 1), 3), **s.summary(),
                            "per_file": s.files} for n, s in scorers.items()}}


def _probe(args: list[str], uri: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.probe", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed on {uri}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _senko_long(senko: Senko, item: Item) -> tuple[Annotation, dict[str, Any]]:
    """senko on one long file in a fresh process (or its cached result): the annotation and the probe's numbers."""
    path = senko.cache_path(item.audio, item.uri)
    hit = senko.cached(path, item.uri)
    if hit is not None:
        ann, meta = hit
        return ann, {"wall_s": meta["wall_s"], **_senko_extra(meta), "cached": True}
    t0 = time.perf_counter()
    with senko_wav(item.audio) as wav:
        prep_s = time.perf_counter() - t0
        rttm = path.with_suffix(".probe.rttm")
        rttm.parent.mkdir(parents=True, exist_ok=True)
        probe = _probe([wav, "--rttm", str(rttm), "--system", "senko", "--threads", str(senko.threads),
                        "--uri", item.uri], item.uri)
    ann = read_rttm(rttm).get(item.uri, Annotation(uri=item.uri))
    rttm.unlink()
    meta = {**probe, "prep_s": prep_s}
    senko.store(path, ann, meta)
    return ann, {"wall_s": meta["wall_s"], **_senko_extra(meta), "cached": False}


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
    _save_hyp_uri(item.uri, system, ann)


def _save_hyp_uri(uri: str, system: str, ann: Annotation, sub: str = "") -> None:
    path = cache_root() / "hyp" / sub / f"{uri}.{system}.rttm"
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
    keep = ("files", "hours", "der", "der_forgiving", "miss", "false_alarm", "confusion", "jer", "overlap_missed",
            "overlap_detected", "overlap_precision", "overlap_speaker_miss", "count_exact", "count_mae", "rtf",
            "cpu_rtf", "load_s", "components")
    out = {n: {k: s[k] for k in keep if k in s} for n, s in result["systems"].items()}
    for n, s in result["systems"].items():
        if s.get("per_file") and "peak_rss_mb" in s["per_file"][0]:
            fields = ("uri", "duration", "rtf", "cpu_rtf", "wall_s", "cpu_s", "peak_rss_mb", "load_s", "der",
                      "pred_speakers", "true_speakers")
            out[n]["long_files"] = [{k: r[k] for k in fields if k in r} for r in s["per_file"]]
    return {"overlap_share_of_speech": result["dataset"]["overlap_share_of_speech"], "systems": out}


def _pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}%}"


_COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("files", "Files", str), ("der", "DER", _pct), ("der_forgiving", "DER fgv", _pct),
    ("miss", "Miss", _pct), ("false_alarm", "FA", _pct), ("confusion", "Conf", _pct), ("jer", "JER", _pct),
    ("overlap_missed", "Ovl miss", _pct), ("overlap_detected", "Ovl det", _pct),
    ("count_exact", "Count ok", lambda v: _pct(v, 0)), ("count_mae", "Count MAE", lambda v: f"{v:.2f}"),
    ("rtf", "RTF", lambda v: f"{v:.4f}"), ("cpu_rtf", "CPU s/s", lambda v: f"{v:.4f}"),
    ("load_s", "Load s", lambda v: f"{v:.2f}"),
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
        for col in ("System", "File", "Hours", "RTF", "CPU s/s", "Wall s", "Peak RSS MB", "Load s", "Speakers", "DER"):
            t.add_column(col, justify="right")
        for sys_name, s in result["systems"].items():
            for r in s["per_file"]:
                t.add_row(sys_name, r["uri"], f"{r['duration'] / 3600:.2f}", f"{r['rtf']:.4f}",
                          f"{r['cpu_rtf']:.4f}" if "cpu_rtf" in r else "", f"{r['wall_s']:.1f}",
                          f"{r['peak_rss_mb']:.0f}", f"{r['load_s']:.2f}",
                          f"{r['pred_speakers']}/{r['true_speakers']}", f"{r['der']:.1%}")
        console.print(t)
    elif name.startswith("sim"):
        t = Table(title=f"{name}: by true speaker count (DER / exact-count rate / count MAE)")
        t.add_column("Speakers")
        for sys_name in result["systems"]:
            t.add_column(sys_name, justify="right")
        counts = next(iter(result["systems"].values()), {}).get("per_count", {})
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
    lines += ["| Set | System | Files | DER | DER forgiving | Miss | FA | Confusion | JER | Overlap missed "
              "| Overlap detected | Count exact | Count MAE | RTF | CPU s/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for set_name, s in summary["sets"].items():
        for sys_name, r in s.get("systems", {}).items():
            cpu = f"{r['cpu_rtf']:.4f}" if r.get("cpu_rtf") is not None else "–"
            lines.append(f"| {set_name} | {sys_name} | {r['files']} | {r['der']:.1%} | {r['der_forgiving']:.1%} | "
                         f"{r['miss']:.1%} | {r['false_alarm']:.1%} | {r['confusion']:.1%} | {r['jer']:.1%} | "
                         f"{_pct(r.get('overlap_missed'))} | {_pct(r.get('overlap_detected'))} | "
                         f"{r['count_exact']:.0%} | {r['count_mae']:.2f} | {r['rtf']:.4f} | {cpu} |")
    long_rows = [(n, r) for n, s in summary["sets"].get("long", {}).get("systems", {}).items()
                 for r in s.get("long_files", [])]
    if long_rows:
        lines += ["", "| System | Long file | Hours | RTF | CPU s/s | Wall s | Peak RSS MB | Model load s | DER |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for n, r in long_rows:
            cpu = f"{r['cpu_rtf']:.4f}" if "cpu_rtf" in r else "–"
            lines.append(f"| {n} | {r['uri']} | {r['duration'] / 3600:.2f} | {r['rtf']:.4f} | {cpu} | "
                         f"{r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['load_s']:.2f} | {r['der']:.1%} |")
    emb = summary["sets"].get("embeddings")
    if emb:
        lines += ["", f"Embeddings ({emb['backend']}):", "", "| Condition | EER | minDCF p=0.01 | minDCF p=0.05 |",
                  "|---|---|---|---|"]
        for cond, r in emb.items():
            if isinstance(r, dict):
                lines.append(f"| {cond} | {r['eer']:.2%} | {r['min_dcf_p0.01']:.3f} | {r['min_dcf_p0.05']:.3f} |")
    return "\n".join(lines) + "\n"
