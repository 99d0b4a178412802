"""The ``/v1`` diarization and job routes, plus health, readiness and metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from diarize.captions import to_captions
from diarize.identity import parse_channel_roles
from diarize.result import Result

from .auth import Tenant
from .batch import is_listing
from .core import Service, uri_of
from .errors import ApiError, redact
from .fields import known_fields, unknown_field
from .models import (
    BatchFileResult,
    BatchResult,
    DiarizeOptions,
    DiarizeResponse,
    ErrorResponse,
    Health,
    Job,
    JobList,
    JobStatus,
    Readiness,
    SpeakerIdentification,
    SpeakerOptions,
)
from .uploads import remove, resolve_archive_path, spool, spool_path


def get_service(request: Request) -> Service:
    return request.app.state.service


Svc = Annotated[Service, Depends(get_service)]

ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Malformed multipart body", 401: "Missing or invalid API key",
        403: "Another tenant's object, or a path outside the archive",
        404: "Not found", 413: "Upload or audio too long", 415: "Unsupported audio format",
        422: "Invalid options, or unusable audio", 429: "Queue full (see Retry-After)",
        503: "Shutting down",
    }.items()
}  # fmt: skip

OutputFormat = Annotated[Literal["json", "rttm", "srt", "vtt", "txt"], Query(
    alias="format", description="json (default), rttm, or captions on the exclusive view: srt, vtt, txt "
                                "('Speaker: words' lines; utterance times without a transcript)")]
MEDIA_TYPES = {"rttm": "text/plain", "txt": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}
TEXT_CONTENT = {media: {} for media in MEDIA_TYPES.values()}


MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _json(field: str, raw: str | bytes) -> Any:
    """Strict JSON (no NaN or Infinity); 422 naming the field when it is not JSON."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid_options", f"{field}: not valid JSON: {exc}") from None


def _invalid(exc: ValidationError, field: str = "") -> ApiError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in (field, *first.get("loc", ())) if p != "")
    message = str(first["msg"]).removeprefix("Value error, ")
    return ApiError(422, "invalid_options", f"{where}: {message}" if where else message)


def _parse(model: type, field: str, raw: str | None):
    if raw is None or raw == "":
        return None
    try:
        return model.model_validate(_json(field, raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:
            raise unknown_field(str(first["loc"][0]), model.model_fields, field, "invalid_options") from None
        raise _invalid(exc, field) from None


def _channel_roles(raw: str | None) -> Any:
    """A JSON object, or the CLI's ``1=Agent,2=Customer``."""
    if raw is None or raw == "":
        return None
    if raw.lstrip().startswith("{"):
        return _json("channel_roles", raw)
    return {str(channel): role for channel, role in parse_channel_roles(raw).items()}


def _transcript(raw: UploadFile | str | None) -> Any:
    """The transcript's JSON, from a form field or a file part (at most ``MAX_TRANSCRIPT_BYTES``)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        return _json("transcript", raw)
    data = raw.file.read(MAX_TRANSCRIPT_BYTES + 1)
    if len(data) > MAX_TRANSCRIPT_BYTES:
        raise ApiError(413, "transcript_too_large", f"the transcript exceeds {MAX_TRANSCRIPT_BYTES >> 20} MB")
    return _json("transcript", data) if data.strip() else None


def form_options(
    speakers_expected: Annotated[int | None, Form(ge=1, le=100, description="Exact number of speakers.")] = None,
    speaker_options: Annotated[str | None, Form(
        description='JSON: {"min_speakers_expected": 2, "max_speakers_expected": 4}')] = None,
    multichannel: Annotated[bool, Form(
        description="Diarize each channel on its own: speakers 1A, 2A, ... carry their channel; speaker counts "
                    "apply per channel.")] = False,
    channel_roles: Annotated[str | None, Form(
        description='Role of each channel\'s party (needs multichannel): JSON {"1": "Agent", "2": "Customer"} '
                    "or 1=Agent,2=Customer.")] = None,
    speaker_identification: Annotated[str | None, Form(
        description='JSON: {"speaker_type": "role", "known_values": ["Agent", "Customer"]}, or {"speakers": '
                    '[{"name": "Sarah Johnson", "role": "Agent", "description": "..."}]}; optional allow_repeats, '
                    'use_priors, call_direction ("inbound" or "outbound").')] = None,
    transcript: Annotated[UploadFile | str | None, File(
        description='ASR words: a JSON list of {"word", "start", "end"} (seconds) or Whisper / faster-whisper JSON '
                    "(segments with word timestamps), as a text field or a file part (large transcripts). Its words "
                    "become utterance text and its cues (introductions, addressing, role phrases) identify "
                    "speakers.")] = None,
    identify_enrolled: Annotated[bool, Form(
        description="Match speakers against enrolled voiceprints (evidence for speaker_identification when "
                    "given).")] = False,
    exclusive: Annotated[bool, Form(
        description="One speaker per instant (no overlapping utterances), e.g. for subtitles.")] = False,
) -> DiarizeOptions:
    """Diarization options from multipart form fields (objects as JSON strings)."""
    try:
        return DiarizeOptions(
            speakers_expected=speakers_expected,
            speaker_options=_parse(SpeakerOptions, "speaker_options", speaker_options),
            multichannel=multichannel,
            channel_roles=_channel_roles(channel_roles),
            speaker_identification=_parse(SpeakerIdentification, "speaker_identification", speaker_identification),
            transcript=_transcript(transcript),
            identify_enrolled=identify_enrolled,
            exclusive=exclusive,
        )
    except ValidationError as exc:
        raise _invalid(exc) from None


Options = Annotated[DiarizeOptions, Depends(form_options)]


def exported(response: dict, output_format: str, uri: str) -> Response:
    """A result document as RTTM or captions (the library's writers)."""
    result = Result.from_dict({**response, "uri": uri})
    text = result.to_rttm() if output_format == "rttm" else to_captions(result, output_format)
    return Response(text, media_type=f"{MEDIA_TYPES[output_format]}; charset=utf-8")


def _job_response(job, status_code: int = 202) -> JSONResponse:
    body = Job.model_validate(job.to_api()).model_dump(mode="json")
    return JSONResponse(body, status_code=status_code, headers={"Location": f"/v1/jobs/{job.id}"})


v1 = APIRouter(prefix="/v1", tags=["diarization"], dependencies=[Depends(known_fields)],
               responses={k: v for k, v in ERRORS.items() if k in (400, 401, 422)})


@v1.post(
    "/diarize",
    response_model=DiarizeResponse,
    response_model_exclude_none=True,
    responses={**ERRORS, 202: {"model": Job, "description": "Audio too long to answer now: a job was created"},
               200: {"content": TEXT_CONTENT, "description": "The result (JSON, or RTTM / captions with ?format=)"}},
    summary="Diarize one audio file",
)
async def diarize(
    svc: Svc, tenant: Tenant, options: Options,
    file: Annotated[UploadFile, File(description="Audio file (WAV, FLAC, MP3, M4A, Opus, ...)")],
    output_format: OutputFormat = "json",
):
    """Who spoke when (per channel with multichannel) and, with identification options, who each speaker is.
    Audio up to the synchronous limit is answered now; longer audio answers 202 with a job."""
    path: Path | None = spool_path(svc.data_dir, file.filename)
    try:
        await run_in_threadpool(spool, file, path)
        info = await svc.probe(path, options, file.filename)
        if info.duration > svc.settings.sync_max_duration:
            job_id, destination = svc.store.new_audio_path(path.suffix)
            os.replace(path, destination)
            path = destination
            job = svc.create_job(tenant, source="upload", audio_path=destination, filename=file.filename,
                                 keep_audio=False, info=info, options=options, job_id=job_id)
            path = None
            return _job_response(job)
        response = await svc.diarize(tenant, path, options, info, file.filename)
    finally:
        remove(path)
    if output_format != "json":
        return exported(response.model_dump(exclude_none=True), output_format, uri_of(file.filename))
    return response


@v1.post("/jobs", status_code=202, response_model=Job, responses=ERRORS, summary="Submit a diarization job")
async def create_job(
    svc: Svc, tenant: Tenant, options: Options,
    file: Annotated[UploadFile | None, File(description="Audio file; or give path")] = None,
    path: Annotated[str | None, Form(
        description="Instead of file: a file, folder or manifest (one path per line) in the archive root")] = None,
    pattern: Annotated[str | None, Form(
        max_length=200, description="For a folder or manifest: glob on file names (default: any audio file)")] = None,
    keep_audio: Annotated[bool, Form(description="Keep the uploaded audio until the job is deleted")] = False,
):
    """Queue one file (uploaded, or a path inside the archive root), or every audio file of an archive folder or
    manifest (a directory job); poll ``GET /v1/jobs/{id}``."""
    if (file is None) == (path is None):
        raise ApiError(422, "invalid_request", "give exactly one of file (upload) or path (archive)")
    if pattern and path is None:
        raise ApiError(422, "invalid_request", "pattern applies to a folder or a manifest under the archive root")
    if path is not None:
        source = resolve_archive_path(svc.settings.archive_root, tenant, path, folders=True)
        if is_listing(source):
            job = await run_in_threadpool(svc.batches.create, tenant, path, source, pattern or None, options)
            return _job_response(job)
        if pattern:
            raise ApiError(422, "invalid_request", "pattern applies to a folder or a manifest, not to one audio file")
        info = await svc.probe(source, options, path)
        job_id, _ = svc.store.new_audio_path("")
        job = svc.create_job(tenant, source="archive", audio_path=source, filename=path, keep_audio=True,
                             info=info, options=options, job_id=job_id)
        return _job_response(job)
    spooled: Path | None = spool_path(svc.data_dir, file.filename)
    try:
        await run_in_threadpool(spool, file, spooled)
        info = await svc.probe(spooled, options, file.filename)
        job_id, destination = svc.store.new_audio_path(spooled.suffix)
        os.replace(spooled, destination)
        spooled = destination
        job = svc.create_job(tenant, source="upload", audio_path=destination, filename=file.filename,
                             keep_audio=keep_audio, info=info, options=options, job_id=job_id)
        spooled = None
    finally:
        remove(spooled)
    return _job_response(job)


@v1.get("/jobs", response_model=JobList, summary="List this tenant's jobs")
def list_jobs(
    svc: Svc, tenant: Tenant, status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    return {"jobs": [j.to_api() for j in svc.store.list(tenant, status, limit)]}


@v1.get("/jobs/{job_id}", response_model=Job, responses=ERRORS, summary="A job's status and progress")
def get_job(svc: Svc, tenant: Tenant, job_id: str):
    return svc.own_job(tenant, job_id).to_api()


@v1.get(
    "/jobs/{job_id}/result",
    response_model=DiarizeResponse | BatchResult,
    response_model_exclude_none=True,
    responses={**ERRORS, 409: {"model": ErrorResponse, "description": "Not finished, or failed"},
               200: {"content": TEXT_CONTENT, "description": "The result (JSON, or RTTM / captions with ?format=); "
                                                                   "a directory job's: its summary and files"}},
    summary="A finished job's result",
)
def job_result(svc: Svc, tenant: Tenant, job_id: str, output_format: OutputFormat = "json"):
    """One file's result, or a directory job's summary and per-file records (each file: ``files/{file}``)."""
    job = svc.own_job(tenant, job_id)
    if job.batch is not None and output_format != "json":
        raise ApiError(422, "invalid_request", f"a directory job has one {output_format} per file: "
                                               f"GET files/{{file}}?format={output_format}")
    if job.status == "failed":
        raise ApiError(409, "job_failed", f"the job failed: {job.error_code}: {job.error_message}")
    if job.status != "succeeded":
        raise ApiError(409, "job_not_finished", f"the job is {job.status} ({job.progress:.0%}); retry later")
    try:
        response = json.loads(svc.store.result_path(job.id).read_text())
    except (OSError, ValueError):
        raise ApiError(410, "result_missing", "the result file of this job is gone from the server") from None
    if output_format != "json":
        return exported(response, output_format, uri_of(job.filename) if job.filename else job.id)
    return response


@v1.get(
    "/jobs/{job_id}/files/{file:path}",
    response_model=BatchFileResult,
    response_model_exclude_none=True,
    responses={**ERRORS, 409: {"model": ErrorResponse, "description": "Not diarized yet, or failed"},
               200: {"content": TEXT_CONTENT, "description": "The file's result (JSON, RTTM or captions)"}},
    summary="One file of a directory job",
)
def job_file(svc: Svc, tenant: Tenant, job_id: str, file: str, output_format: OutputFormat = "json"):
    """A file's result as soon as it is diarized, named as in the job's result (``files[].file``)."""
    job = svc.own_job(tenant, job_id)
    if job.batch is None:
        raise ApiError(404, "not_found", f"job {job_id} is a one-file job: GET /v1/jobs/{job_id}/result")
    found = svc.batches.file_result(job, file, output_format)
    if output_format == "rttm":
        return PlainTextResponse(found, media_type="text/plain")
    if output_format != "json":
        return exported(found.model_dump(exclude_none=True), output_format, uri_of(file))
    return found


@v1.delete("/jobs/{job_id}", status_code=204, responses=ERRORS, summary="Cancel and delete a job")
def delete_job(svc: Svc, tenant: Tenant, job_id: str):
    svc.delete_job(svc.own_job(tenant, job_id))
    return Response(status_code=204)


ops = APIRouter(tags=["operations"])


@ops.get("/healthz", response_model=Health, summary="The process is up")
def healthz():
    return {"status": "ok"}


@ops.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, summary="Models loaded")
def readyz(svc: Svc):
    pool = svc.pool
    ready = pool.ready_workers
    body = Readiness(
        status="ready" if ready else ("unavailable" if pool.load_error else "starting"),
        workers_ready=ready, workers=pool.size, model=pool.model_id, voiceprints=svc.voice.voiceprints is not None,
        detail=redact(detail, svc.settings.data_dir) if (detail := pool.load_error or svc.voice.error) else None,
    ).model_dump(mode="json")
    return JSONResponse(body, status_code=200 if ready else 503)


@ops.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(svc: Svc):
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
