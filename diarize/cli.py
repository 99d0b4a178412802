"""Command line: ``diarize run FILE`` prints or writes who spoke when; ``diarize batch SRC`` does a whole archive."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .config import PipelineConfig
from .errors import DiarizeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Speaker diarization: who spoke when.")
err = Console(stderr=True)


class OutputFormat(str, Enum):
    json = "json"
    rttm = "rttm"


class ClusteringMethod(str, Enum):
    spectral = "spectral"
    kmeans = "kmeans"


def fail(message: str) -> None:
    """One-line error on stderr and exit status 1 (bad input is the user's to fix, not a traceback)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.callback()
def main() -> None:
    """Speaker diarization: who spoke when."""


@app.command()
def run(
    file: Path = typer.Argument(..., help="Audio file (WAV, FLAC, OGG, MP3, M4A, Opus, ...)."),
    num_speakers: Optional[int] = typer.Option(None, "--num-speakers", "-n", help="Exact number of speakers."),
    min_speakers: Optional[int] = typer.Option(None, "--min-speakers", help="At least this many speakers."),
    max_speakers: Optional[int] = typer.Option(None, "--max-speakers", help="At most this many speakers."),
    output_format: OutputFormat = typer.Option(OutputFormat.json, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    clustering: ClusteringMethod = typer.Option(ClusteringMethod.spectral, "--clustering", help="Clustering method."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Diarize FILE and print JSON (default) or RTTM."""
    from .audio import load_audio
    from .pipeline import DiarizationPipeline

    try:
        config = PipelineConfig.model_validate({"clustering": {"method": clustering.value}})
        audio = load_audio(file, config.audio)
        pipeline = DiarizationPipeline(config)
        show = not quiet and sys.stderr.isatty() or audio.duration > 600 and not quiet
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
            console=err, disable=not show, transient=True,
        ) as bar:
            task = bar.add_task(file.name, total=1.0)
            result = pipeline(
                audio, num_speakers, min_speakers, max_speakers,
                progress=lambda stage, fraction: bar.update(task, completed=fraction, description=f"{file.name}: {stage}"),
            )
    except DiarizeError as exc:
        fail(str(exc))
    text = result.to_json(with_centroids=False) + "\n" if output_format is OutputFormat.json else result.to_rttm()
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


@app.command()
def batch(
    src: Path = typer.Argument(..., help="Directory tree of audio files, or a manifest file (one path per line)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: SRC-diarized beside SRC)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=0, help="Worker processes (0: this one)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch threads per worker (cores/workers)."),
    pattern: Optional[str] = typer.Option(None, "--pattern", help="File-name glob, e.g. '*.wav' (default: audio)."),
    fingerprint: bool = typer.Option(True, "--fingerprint/--no-fingerprint", help="Global voice ids across files."),
    identify: bool = typer.Option(False, "--identify", help="Name speakers whose voice is enrolled."),
    num_speakers: Optional[int] = typer.Option(None, "--num-speakers", "-n", help="Exact number of speakers."),
    min_speakers: Optional[int] = typer.Option(None, "--min-speakers", "--min", help="At least this many speakers."),
    max_speakers: Optional[int] = typer.Option(None, "--max-speakers", "--max", help="At most this many speakers."),
    multichannel: bool = typer.Option(False, "--multichannel", help="Diarize each channel on its own."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Run on Ray: auto, local or host:port."),
    store: Optional[Path] = typer.Option(None, "--store", help="Voiceprint store folder."),
    tenant: str = typer.Option("default", "--tenant", envvar="DIARIZE_TENANT", help="Voiceprint tenant."),
    hash_inputs: bool = typer.Option(False, "--hash", help="Know inputs by SHA-256, not size and mtime."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try again files that failed before."),
    clustering: ClusteringMethod = typer.Option(ClusteringMethod.spectral, "--clustering", help="Clustering method."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress: failures and the summary only."),
) -> None:
    """Diarize every audio file under SRC: JSON + RTTM per file, index.jsonl/csv; resumable.

    Exit status: 0 all files diarized, 1 some failed (see the index), 2 the batch could not run, 130 interrupted.
    """
    from .batch import BatchOptions
    from .batch.console import EXIT_ERROR, batch_main

    try:
        options = BatchOptions(
            pipeline=PipelineConfig.model_validate({"clustering": {"method": clustering.value}}),
            num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers,
            multichannel=multichannel, pattern=pattern, workers=workers, threads=threads, fingerprint=fingerprint,
            identify=identify, store=str(store) if store else None, tenant=tenant, ray=ray,
            content_key="sha256" if hash_inputs else "stat", retry_failed=retry_failed,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {' '.join(str(exc).split())}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(batch_main(src, out, options, quiet))


if __name__ == "__main__":
    app()
