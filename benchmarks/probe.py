"""One pipeline run in a fresh process, for honest peak memory: prints a JSON line with times and peak RSS.

``python -m benchmarks.probe AUDIO --rttm OUT.rttm [--config CONFIG.json] [--num-speakers N]``
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()

    from diarize.config import PipelineConfig
    from diarize.pipeline import DiarizationPipeline

    config = PipelineConfig.model_validate_json(Path(args.config).read_text()) if args.config else PipelineConfig()
    t0 = time.perf_counter()
    pipe = DiarizationPipeline(config)
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    t0 = time.perf_counter()
    result = pipe(args.audio, num_speakers=args.num_speakers)
    wall_s = time.perf_counter() - t0
    Path(args.rttm).write_text(result.to_rttm())
    print(json.dumps({"load_s": load_s, "wall_s": wall_s, "duration": result.duration,
                      "rss_after_load_mb": rss_loaded, "peak_rss_mb": _rss_mb()}))


if __name__ == "__main__":
    main()
