"""Command line: ``diarize run FILE`` prints or writes who spoke when."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .config import PipelineConfig
from .errors import DiarizeError, IdentificationError

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
    multichannel: bool = typer.Option(False, "--multichannel", help="Diarize each channel on its own (1A, 2A, ...)."),
    channel_roles: Optional[str] = typer.Option(None, "--channel-roles", help="Role per channel: 1=Agent,2=Customer."),
    speaker_type: Optional[str] = typer.Option(None, "--speaker-type", help="What --known-values are: role or name."),
    known_values: Optional[str] = typer.Option(None, "--known-values", help="Comma-separated roles or names."),
    speakers: Optional[Path] = typer.Option(None, "--speakers", help="JSON list of {name, role, description, ...}."),
    transcript: Optional[Path] = typer.Option(None, "--transcript", help="ASR words JSON (word list or Whisper)."),
    allow_repeats: bool = typer.Option(False, "--allow-repeats", help="Let several speakers share an identity."),
    priors: bool = typer.Option(False, "--priors", help="Let weak priors decide what no evidence does."),
    call_direction: str = typer.Option("inbound", "--call-direction",
                                       help="For --priors: inbound (agent speaks first) or outbound."),
) -> None:
    """Diarize FILE and print JSON (default) or RTTM; identify speakers when given roles, names or a transcript."""
    from .audio import load_audio
    from .identity import IdentificationRequest, identify, load_transcript, parse_channel_roles, parse_values
    from .multichannel import MultichannelDiarizer
    from .pipeline import DiarizationPipeline

    try:
        config = PipelineConfig.model_validate({"clustering": {"method": clustering.value}})
        if channel_roles is not None and not multichannel:
            fail("--channel-roles needs --multichannel")
        request = None
        if any(v is not None for v in (channel_roles, speaker_type, known_values, speakers, transcript)) or priors:
            request = IdentificationRequest.parse({
                "speaker_type": speaker_type,
                "known_values": parse_values(known_values) if known_values is not None else (),
                "speakers": _read_speakers(speakers) if speakers is not None else (),
                "channel_roles": parse_channel_roles(channel_roles) if channel_roles is not None else {},
                "transcript": load_transcript(transcript) if transcript is not None else None,
                "allow_repeats": allow_repeats,
                "use_priors": priors,
                "call_direction": call_direction,
            })
        audio = load_audio(file, config.audio, mono=not multichannel)
        pipeline = DiarizationPipeline(config)
        diarize = MultichannelDiarizer(pipeline) if multichannel else pipeline
        show = not quiet and sys.stderr.isatty() or audio.duration > 600 and not quiet
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
            console=err, disable=not show, transient=True,
        ) as bar:
            task = bar.add_task(file.name, total=1.0)
            result = diarize(
                audio, num_speakers, min_speakers, max_speakers,
                progress=lambda stage, fraction: bar.update(task, completed=fraction, description=f"{file.name}: {stage}"),
            )
        if request is not None:
            result = identify(result, request, config=config.identification)
    except DiarizeError as exc:
        fail(str(exc))
    text = result.to_json(with_centroids=False) + "\n" if output_format is OutputFormat.json else result.to_rttm()
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


def _read_speakers(path: Path) -> list:
    """The speaker profiles of a JSON file: a list, or an object with a "speakers" list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdentificationError(f"{path}: cannot read speakers JSON: {exc}") from exc
    if isinstance(data, dict) and "speakers" in data:
        data = data["speakers"]
    if not isinstance(data, list):
        raise IdentificationError(f"{path}: expected a JSON list of speakers (each with a name and/or role)")
    return data


if __name__ == "__main__":
    app()
