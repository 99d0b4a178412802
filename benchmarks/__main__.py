"""``python -m benchmarks run [--quick] [--sets sim,ami,calls,long,embeddings] [--systems ...] [--out DIR]``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import DataMissing, REPO_ROOT
from .datasets import SEED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the benchmark and write <out>/<set>.json, summary.json, summary.md")
    gen_p = sub.add_parser("generate", help="only build the datasets into benchmarks/cache/")
    for p in (run_p, gen_p):
        p.add_argument("--sets", default="sim,ami,calls,long,embeddings", help="comma-separated subset")
        p.add_argument("--quick", action="store_true", help="small subsets: a few minutes")
        p.add_argument("--seed", type=int, default=SEED)
    run_p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    run_p.add_argument("--systems", default="ours,oracle-count,fast,baseline,senko", help="comma-separated subset")
    run_p.add_argument("--config", type=Path, default=None, help="PipelineConfig JSON for our pipeline")
    run_p.add_argument("--threads", type=int, default=None,
                       help="torch, BLAS/OpenMP (and senko's numba) threads of every system (default: all cores)")
    run_p.add_argument("--fresh-baselines", action="store_true",
                       help="recompute the cached baseline and senko hypotheses")
    args = parser.parse_args(argv)
    sets = tuple(s.strip() for s in args.sets.split(",") if s.strip())
    try:
        if args.command == "generate":
            return _generate(sets, args.quick, args.seed)
        return _run(args, sets)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, sets: tuple[str, ...]) -> int:
    from diarize.config import PipelineConfig

    from .runner import SYSTEMS, Options, run

    config = PipelineConfig.model_validate_json(args.config.read_text()) if args.config else PipelineConfig()
    if args.threads:
        embedding = config.embedding.model_copy(update={"num_threads": args.threads})
        config = config.model_copy(update={"embedding": embedding})
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        print(f"error: unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    run(Options(sets=sets, systems=systems, quick=args.quick, out=args.out, config=config, seed=args.seed,
                fresh_baselines=args.fresh_baselines))
    return 0


def _generate(sets: tuple[str, ...], quick: bool, seed: int) -> int:
    from . import datasets
    from .runner import QUICK

    if "sim" in sets:
        for split in ("tune", "heldout"):
            datasets.sim_items(split, QUICK["sim"] if quick else None, seed)
    if "calls" in sets:
        datasets.call_items(QUICK["calls"] if quick else None, seed)
    if "long" in sets:
        datasets.long_items(QUICK["long"] if quick else None, seed)
    print(f"datasets ready in {datasets.cache_root()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
