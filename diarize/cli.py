"""Command line: ``diarize run FILE`` prints or writes who spoke when; ``batch SRC`` does a whole archive;
``enroll``, ``speakers`` and ``identify`` manage and use voiceprints; ``serve`` and ``keys`` run the HTTP API."""

from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .config import PipelineConfig
from .errors import DiarizeError, IdentificationError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Speaker diarization: who spoke when.")
err = Console(stderr=True)


class OutputFormat(str, Enum):
    json = "json"
    rttm = "rttm"


class RunFormat(str, Enum):
    json = "json"
    rttm = "rttm"
    srt = "srt"
    vtt = "vtt"
    txt = "txt"


class ClusteringMethod(str, Enum):
    spectral = "spectral"
    kmeans = "kmeans"


class Profile(str, Enum):
    accurate = "accurate"
    fast = "fast"


ProfileOption = typer.Option(
    Profile.accurate, "--profile",
    help="accurate: neural segmentation + CAM++, overlapping speech; fast: GE2E windows, one speaker at a time.")
ClusteringOption = typer.Option(ClusteringMethod.spectral, "--clustering",
                                help="Clustering method of the fast profile.")
#: Longest audio ``run`` and ``batch`` accept by default (seconds): the service's cap. A header can claim
#: hours that a few bytes hold (a 1 Hz WAV, a long silence in FLAC); decoding them costs gigabytes.
DEFAULT_MAX_DURATION = 4 * 3600.0
MaxDurationOption = typer.Option(
    DEFAULT_MAX_DURATION, "--max-duration", min=0,
    help="Refuse audio longer than this many seconds, from its header where it says (0: no limit).")


def pipeline_config(profile: Profile, clustering: ClusteringMethod,
                    max_duration: float | None = None) -> PipelineConfig:
    """The named preset, with the fast profile's clustering method and the longest audio accepted (0: none)."""
    config = PipelineConfig.preset(profile.value)
    return config.model_copy(update={
        "clustering": config.clustering.model_copy(update={"method": clustering.value}),
        "audio": config.audio.model_copy(update={"max_duration": max_duration or None}),
    })


def fail(message: str) -> None:
    """One-line error on stderr and exit status 1 (bad input is the user's to fix, not a traceback)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        sys.stdout.write(f"diarize {metadata.version('diarize')}\n")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Speaker diarization: who spoke when."""


def warn(message: str) -> None:
    """One clean warning line on stderr."""
    err.print(f"[yellow]warning:[/yellow] {escape(' '.join(message.split()))}", highlight=False, soft_wrap=True)


# The voiceprint store: shared by run --identify, enroll, identify and speakers.
DataDir = typer.Option(None, "--data-dir", envvar="DIARIZE_DATA_DIR", show_envvar=True,
                       help="Voiceprint data folder (default: ~/.local/share/diarize, as the service).")
Tenant = typer.Option("default", "--tenant", envvar="DIARIZE_TENANT", show_envvar=True,
                      help="Tenant whose voiceprints to use.")
QdrantUrl = typer.Option(None, "--qdrant-url", envvar="DIARIZE_QDRANT_URL", show_envvar=True,
                         help="Qdrant server URL (default: the embedded store under --data-dir).")
QdrantApiKey = typer.Option(None, "--qdrant-api-key", envvar="DIARIZE_QDRANT_API_KEY", show_envvar=False,
                            help="Qdrant server API key.")


@contextmanager
def _open_voiceprints(data_dir: Optional[Path], url: Optional[str], api_key: Optional[str], pipeline=None):
    """The voiceprint store, closed on exit (the embedded store locks its folder while open)."""
    from .errors import StoreError
    from .voiceprints import Voiceprints, default_data_dir

    try:
        vp = Voiceprints.open(data_dir or default_data_dir(), url=url, api_key=api_key, pipeline=pipeline)
    except OSError as exc:
        raise StoreError(f"cannot open the voiceprint store: {exc}") from exc
    try:
        yield vp
    finally:
        vp.close()


@app.command()
def run(
    file: Path = typer.Argument(..., help="Audio file (WAV, FLAC, OGG, MP3, M4A, Opus, ...)."),
    num_speakers: Optional[int] = typer.Option(None, "--num-speakers", "-n", help="Exact number of speakers."),
    min_speakers: Optional[int] = typer.Option(None, "--min-speakers", help="At least this many speakers."),
    max_speakers: Optional[int] = typer.Option(None, "--max-speakers", help="At most this many speakers."),
    output_format: RunFormat = typer.Option(
        RunFormat.json, "--format", "-f",
        help="json, rttm, or captions (srt, vtt; txt: 'Speaker: words' lines), which use one speaker per instant."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    include_config: bool = typer.Option(False, "--include-config", help="Add the pipeline's configuration to JSON."),
    profile: Profile = ProfileOption,
    clustering: ClusteringMethod = ClusteringOption,
    exclusive: bool = typer.Option(False, "--exclusive", help="One speaker per instant (no overlapping utterances)."),
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
    identify_voices: bool = typer.Option(False, "--identify", help="Name enrolled speakers from the voiceprint store."),
    max_duration: float = MaxDurationOption,
    data_dir: Optional[Path] = DataDir,
    tenant: str = Tenant,
    qdrant_url: Optional[str] = QdrantUrl,
    qdrant_api_key: Optional[str] = QdrantApiKey,
) -> None:
    """Diarize FILE and print JSON (default), RTTM or captions; identify speakers when given roles, names or a
    transcript. Warnings (no speech found, a speaker count the audio could not meet) go to stderr and the JSON."""
    from .captions import to_captions
    from .identity import IdentificationRequest, identify, load_transcript, parse_channel_roles, parse_values
    from .multichannel import MultichannelDiarizer
    from .pipeline import DiarizationPipeline

    try:
        config = pipeline_config(profile, clustering, max_duration)
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
        audio, notes = _load_audio(file, config, mono=not multichannel)
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
        result = result.with_warnings(notes)
        matches = []
        if identify_voices:
            with _open_voiceprints(data_dir, qdrant_url, qdrant_api_key, pipeline) as vp:
                matches = vp.identify(tenant, result)
        if request is not None:
            result = identify(result, request, voiceprints=matches, config=config.identification)
        if matches:
            from .voiceprints import apply_names

            result = apply_names(result, matches)
        if exclusive:
            result = result.exclusive()
    except DiarizeError as exc:
        fail(str(exc))
    for note in result.warnings:
        warn(note)
    if output_format is RunFormat.json:
        text = result.to_json(include_config=include_config) + "\n"
    elif output_format is RunFormat.rttm:
        text = result.to_rttm()
    else:
        text = to_captions(result, output_format.value)
    _emit(text, output)


def _load_audio(file: Path, config: PipelineConfig, mono: bool = True):
    """The decoded audio and the decoder's warnings as text (a truncated file), for the result's warnings."""
    from .audio import load_audio

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = load_audio(file, config.audio, mono=mono)
    return audio, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _emit(text: str, output: Optional[Path]) -> None:
    """Write a command's result to ``output``, or to stdout without one."""
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
    multichannel: bool = typer.Option(False, "--multichannel", help="Diarize each channel on its own (1A, 2A, ...)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Run on Ray: auto, local or host:port."),
    store: Optional[Path] = typer.Option(None, "--store", help="Voiceprint store folder (default: DIARIZE_DATA_DIR)."),
    tenant: str = typer.Option("default", "--tenant", envvar="DIARIZE_TENANT", help="Voiceprint tenant."),
    hash_inputs: bool = typer.Option(False, "--hash", help="Know inputs by SHA-256, not size and mtime."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try again files that failed before."),
    include_config: bool = typer.Option(False, "--include-config", help="Add the pipeline's configuration to JSON."),
    profile: Profile = ProfileOption,
    clustering: ClusteringMethod = ClusteringOption,
    max_duration: float = MaxDurationOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress: failures and the summary only."),
) -> None:
    """Diarize every audio file under SRC: JSON + RTTM per file, index.jsonl/csv; resumable.

    Exit status: 0 all files diarized, 1 some failed (see the index), 2 the batch could not run, 130 interrupted.
    """
    from .batch import BatchOptions
    from .batch.console import EXIT_ERROR, batch_main

    try:
        options = BatchOptions(
            pipeline=pipeline_config(profile, clustering, max_duration),
            num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers,
            multichannel=multichannel, pattern=pattern, workers=workers, threads=threads, fingerprint=fingerprint,
            identify=identify, store=str(store.absolute()) if store else None, tenant=tenant, ray=ray,
            content_key="sha256" if hash_inputs else "stat", retry_failed=retry_failed, include_config=include_config,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {' '.join(str(exc).split())}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(batch_main(src, out, options, quiet))


@app.command()
def enroll(
    name: str = typer.Argument(..., help="Name of the speaker to enroll (or add samples to)."),
    files: list[Path] = typer.Argument(..., help="One or more audio samples of this speaker alone."),
    role: Optional[str] = typer.Option(None, "--role", help="Role of the speaker, e.g. Agent."),
    metadata: Optional[str] = typer.Option(None, "--metadata", help="JSON object stored with the speaker."),
    data_dir: Optional[Path] = DataDir,
    tenant: str = Tenant,
    qdrant_url: Optional[str] = QdrantUrl,
    qdrant_api_key: Optional[str] = QdrantApiKey,
) -> None:
    """Enroll NAME's voice from FILE samples (each must hold one speaker's clear speech)."""
    extra = None
    if metadata is not None:
        try:
            extra = json.loads(metadata)
        except (json.JSONDecodeError, RecursionError) as exc:
            fail(f"--metadata is not valid JSON: {exc}")
        if not isinstance(extra, dict):
            fail("--metadata must be a JSON object")
    try:
        with _open_voiceprints(data_dir, qdrant_url, qdrant_api_key) as vp:
            report = vp.enroll(tenant, name, [str(f) for f in files], role=role, metadata=extra)
    except DiarizeError as exc:
        fail(str(exc))
    spk = report.speaker
    for warning in report.warnings:
        warn(warning)
    sys.stdout.write(
        f"{'enrolled' if report.created else 'updated'} {spk.name}"
        f"{f' ({spk.role})' if spk.role else ''} in tenant {tenant}: {report.samples_added} sample(s) added, "
        f"{spk.n_samples} in all, {spk.speech_seconds:.1f} s of speech; id {spk.speaker_id}\n"
    )


class ListFormat(str, Enum):
    table = "table"
    json = "json"


speakers_app = typer.Typer(no_args_is_help=True, help="Enrolled speakers (voiceprints) of a tenant.")
app.add_typer(speakers_app, name="speakers")


@speakers_app.command("list")
def speakers_list(
    output_format: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="Output format."),
    data_dir: Optional[Path] = DataDir,
    tenant: str = Tenant,
    qdrant_url: Optional[str] = QdrantUrl,
    qdrant_api_key: Optional[str] = QdrantApiKey,
) -> None:
    """List the enrolled speakers of the tenant."""
    try:
        with _open_voiceprints(data_dir, qdrant_url, qdrant_api_key) as vp:
            speakers = vp.list_speakers(tenant)
    except DiarizeError as exc:
        fail(str(exc))
    if output_format is ListFormat.json:
        sys.stdout.write(json.dumps([s.to_dict() for s in speakers], indent=2) + "\n")
        return
    if not speakers:
        err.print(f"no speakers enrolled in tenant {tenant}", highlight=False)
        return
    sys.stdout.write("name\trole\tsamples\tspeech_s\tspeaker_id\tupdated_at\n")
    for s in speakers:
        sys.stdout.write(f"{s.name}\t{s.role or '-'}\t{s.n_samples}\t{s.speech_seconds:.1f}\t"
                         f"{s.speaker_id}\t{s.updated_at}\n")


@speakers_app.command("delete")
def speakers_delete(
    name: str = typer.Argument(..., help="Enrolled speaker to delete, with all their samples."),
    data_dir: Optional[Path] = DataDir,
    tenant: str = Tenant,
    qdrant_url: Optional[str] = QdrantUrl,
    qdrant_api_key: Optional[str] = QdrantApiKey,
) -> None:
    """Delete an enrolled speaker and every vector stored for them."""
    try:
        with _open_voiceprints(data_dir, qdrant_url, qdrant_api_key) as vp:
            spk = vp.delete_speaker(tenant, name)
    except DiarizeError as exc:
        fail(str(exc))
    err.print(f"deleted {spk.name} ({spk.speaker_id}) from tenant {tenant}", highlight=False)


@speakers_app.command("rename")
def speakers_rename(
    old: str = typer.Argument(..., help="Current name."),
    new: str = typer.Argument(..., help="New name."),
    data_dir: Optional[Path] = DataDir,
    tenant: str = Tenant,
    qdrant_url: Optional[str] = QdrantUrl,
    qdrant_api_key: Optional[str] = QdrantApiKey,
) -> None:
    """Rename an enrolled speaker (their voiceprint is kept)."""
    try:
        with _open_voiceprints(data_dir, qdrant_url, qdrant_api_key) as vp:
            spk = vp.rename_speaker(tenant, old, new)
    except DiarizeError as exc:
        fail(str(exc))
    err.print(f"renamed {old} to {spk.name} in tenant {tenant}", highlight=False)


@app.command("identify")
def identify_command(
    file: Path = typer.Argument(..., help="Audio file to diarize and name."),
    output_format: OutputFormat = typer.Option(OutputFormat.json, "--format", "-f",
                                               help="json (result plus matches) or rttm."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    data_dir: Optional[Path] = DataDir,
    tenant: str = Tenant,
    qdrant_url: Optional[str] = QdrantUrl,
    qdrant_api_key: Optional[str] = QdrantApiKey,
) -> None:
    """Diarize FILE and name the speakers enrolled in the tenant; others keep their labels."""
    from .pipeline import DiarizationPipeline

    try:
        config = PipelineConfig()
        pipeline = DiarizationPipeline(config)
        audio, notes = _load_audio(file, config)
        with _open_voiceprints(data_dir, qdrant_url, qdrant_api_key, pipeline) as vp:
            result, matches = vp.identify_file(tenant, audio)
        result = result.with_warnings(notes)
    except DiarizeError as exc:
        fail(str(exc))
    for note in result.warnings:
        warn(note)
    if output_format is OutputFormat.json:
        data = result.to_dict()
        data["matches"] = [m.to_dict() for m in matches]
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = result.to_rttm()
    _emit(text, output)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: Optional[int] = typer.Option(None, help="Worker processes (default: DIARIZE_WORKERS or the CPU count)."),
    data_dir: Optional[Path] = typer.Option(None, help="Data folder (default: DIARIZE_DATA_DIR)."),
) -> None:
    """Run the HTTP API (service/); other settings come from DIARIZE_* variables or $DIARIZE_SETTINGS."""
    import os

    if workers is not None:
        os.environ["DIARIZE_WORKERS"] = str(workers)
    if data_dir is not None:
        os.environ["DIARIZE_DATA_DIR"] = str(data_dir)
    try:
        import uvicorn
        from pydantic import ValidationError

        from service.app import create_app
    except ImportError as exc:
        fail(f"the HTTP service needs the service extra: pip install -e '.[service]' ({exc})")
    try:
        application = create_app()
    except ValidationError as exc:
        fail(f"invalid settings: {exc}")
    uvicorn.run(application, host=host, port=port, timeout_graceful_shutdown=30)


keys_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP service (stored hashed, shown once).")
app.add_typer(keys_app, name="keys")
KeysFile = typer.Option(None, "--keys-file", help="Keys file (default: DIARIZE_KEYS_FILE or <data dir>/keys.json).")
KeysDataDir = typer.Option(None, "--data-dir", help="The service's data folder (default: DIARIZE_DATA_DIR), "
                                                    "as given to 'diarize serve --data-dir'.")


def _key_file(path: Optional[Path], data_dir: Optional[Path]):
    from service.keys import KeyFile
    from service.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    return KeyFile(path or settings.resolved_keys_file)


@keys_app.command("add")
def keys_add(
    tenant: str = typer.Argument(..., help="Tenant the key belongs to."), keys_file: Optional[Path] = KeysFile,
    data_dir: Optional[Path] = KeysDataDir,
) -> None:
    """Create an API key for TENANT and print it (only its hash is stored)."""
    from service.keys import KeyFileError

    try:
        record, key = _key_file(keys_file, data_dir).add(tenant)
    except (KeyFileError, OSError) as exc:
        fail(str(exc))
    err.print(f"key {record.key_id} for tenant {record.tenant}; store it now, it is not shown again:")
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list(keys_file: Optional[Path] = KeysFile, data_dir: Optional[Path] = KeysDataDir) -> None:
    """List key ids and tenants (never the keys)."""
    from service.keys import KeyFileError

    try:
        records = _key_file(keys_file, data_dir).records()
    except KeyFileError as exc:
        fail(str(exc))
    for r in records:
        sys.stdout.write(f"{r.key_id}\t{r.tenant}\t{r.created_at}\n")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Key id from 'diarize keys list'."), keys_file: Optional[Path] = KeysFile,
    data_dir: Optional[Path] = KeysDataDir,
) -> None:
    """Revoke a key by its id."""
    from service.keys import KeyFileError

    try:
        record = _key_file(keys_file, data_dir).revoke(key_id)
    except (KeyFileError, OSError) as exc:
        fail(str(exc))
    if record is None:
        fail(f"no key with id {key_id}")
    err.print(f"revoked key {record.key_id} of tenant {record.tenant}")


if __name__ == "__main__":
    app()
