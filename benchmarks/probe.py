"""One diarization run in a fresh process, for honest peak memory: prints a JSON line with times and peak RSS.

``python -m benchmarks.probe AUDIO --rttm OUT.rttm [--config CONFIG.json] [--num-speakers N]``: our pipeline.
``python -m benchmarks.probe WAV --rttm OUT.rttm --system senko --threads N [--uri URI]``: the peer system senko
(``benchmarks/senko_peer.py``) on a 16 kHz mono 16-bit WAV; its own output is in the JSON line (``output``).
``wall_s`` and ``cpu_s`` are the wall and process CPU seconds of the diarization call, model already loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path


def _rss_mb() -> float:
    """Peak resident memory of this process image: ``VmHWM`` where Linux has it, else ``ru_maxrss``.

    ``ru_maxrss`` alone is wrong in a child process: Linux carries the parent's high-water mark over the exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("audio")
    parser.add_argument("--rttm", required=True)
    parser.add_argument("--config", default=None, help="PipelineConfig JSON file")
    parser.add_argument("--num-speakers", type=int, default=None)
    parser.add_argument("--system", choices=("ours", "senko"), default="ours")
    parser.add_argument("--threads", type=int, default=None, help="senko: threads (default all cores)")
    parser.add_argument("--uri", default=None, help="senko: the RTTM's file id (default the file's stem)")
    args = parser.parse_args()
    if args.system == "senko":
        _senko(args)
        return

    from diarize.config import PipelineConfig
    from diarize.pipeline import DiarizationPipeline

    config = PipelineConfig.model_validate_json(Path(args.config).read_text()) if args.config else PipelineConfig()
    t0 = time.perf_counter()
    pipe = DiarizationPipeline(config)
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = pipe(args.audio, num_speakers=args.num_speakers)
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    Path(args.rttm).write_text(result.to_rttm())
    print(json.dumps({"load_s": load_s, "wall_s": wall_s, "cpu_s": cpu_s, "duration": result.duration,
                      "rss_after_load_mb": rss_loaded, "peak_rss_mb": _rss_mb()}))


def _senko(args: argparse.Namespace) -> None:
    from diarize.result import annotation_to_rttm

    from .senko_peer import SenkoPeer

    peer = SenkoPeer(args.threads or os.cpu_count() or 1)
    rss_loaded = _rss_mb()
    out = peer.diarize_wav(args.audio, args.uri or Path(args.audio).stem)
    Path(args.rttm).write_text(annotation_to_rttm(out.pop("annotation")))
    print(json.dumps({"load_s": peer.load_s, **out, "rss_after_load_mb": rss_loaded, "peak_rss_mb": _rss_mb()}))


if __name__ == "__main__":
    main()
