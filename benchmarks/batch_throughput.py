"""Throughput of ``diarize batch`` over a folder of calls: local pool with 1 and 2 workers, and local Ray.

    python -m benchmarks.batch_throughput [--copies 2] [--layouts 1x2,2x1,1x1] [--ray/--no-ray] [--fingerprint]

The ten ``calls`` of the benchmark sets (75-96 s, stereo 16 kHz) are linked ``--copies`` times into a
temporary archive (20 files, 28 minutes of audio by default); each configuration diarizes it from scratch
into a fresh output folder. Throughput is audio hours per wall-clock hour of the whole ``run_batch`` call
(worker start and model loading included), and "steady" leaves out the time until the first file is done.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from diarize.batch import BatchOptions, run_batch

from . import REPO_ROOT
from .datasets import call_items


def build_archive(root: Path, copies: int) -> list[Path]:
    files = []
    for item in call_items():
        for c in range(copies):
            link = root / f"copy-{c}" / item.audio.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(item.audio.resolve())
            files.append(link)
    return files


def measure(name: str, archive: Path, out: Path, options: BatchOptions, store: Path | None) -> dict:
    done: list[tuple[float, float]] = []
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    summary = run_batch(archive, out, options.model_copy(update={"store": str(store) if store else None}),
                        on_result=lambda r: done.append((time.monotonic(), r.duration or 0.0)))
    wall = time.monotonic() - start
    first = done[0][0] - start if done else wall
    steady_audio = sum(seconds for _, seconds in done[1:])
    row = {
        "name": name, "backend": summary.backend, "workers": summary.workers, "threads": summary.threads,
        "files": summary.processed, "failed": summary.failed, "audio_hours": round(summary.audio_hours, 4),
        "wall_s": round(wall, 1), "first_file_s": round(first, 1),
        "throughput": round(summary.audio_seconds / wall, 1),
        "steady_throughput": round(steady_audio / max(wall - first, 1e-9), 1),
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--layouts", default=None, help="Local runs as WORKERSxTHREADS (default 1xC,Cx1,1x1).")
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--fingerprint", action="store_true", help="Record voice ids in a fresh store per run.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "batch_throughput.json")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        archive = Path(tmp) / "archive"
        build_archive(archive, args.copies)
        base = BatchOptions(fingerprint=args.fingerprint)
        layouts = args.layouts or f"1x{cores},{cores}x1,1x1"
        runs = []
        for layout in dict.fromkeys(layouts.split(",")):
            workers, threads = map(int, layout.split("x"))
            runs.append((f"local {layout}", base.model_copy(update={"workers": workers, "threads": threads})))
        if args.ray:
            runs.append((f"ray local {cores}x1", base.model_copy(update={"ray": "local", "workers": cores,
                                                                          "threads": 1})))
        for i, (name, options) in enumerate(runs):
            store = Path(tmp) / f"store-{i}" if args.fingerprint else None
            rows.append(measure(name, archive, Path(tmp) / f"out-{i}", options, store))
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": cores},
        "copies": args.copies, "fingerprint": args.fingerprint,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=1) + "\n")
    print("| Run | Workers x threads | Files | Audio h | Wall s | Audio-h/h | Steady audio-h/h | Load before/after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['workers']} x {r['threads']} | {r['files']} | {r['audio_hours']:.3f} | "
              f"{r['wall_s']:.0f} | {r['throughput']:.0f} | {r['steady_throughput']:.0f} | "
              f"{r['load_before']:.1f} / {r['load_after']:.1f} |")


if __name__ == "__main__":
    main()
