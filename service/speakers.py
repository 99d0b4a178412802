"""The ``/v1`` voiceprint routes: enrolled speakers, identification of a sample, voices across files."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any, Callable, TypeVar

import anyio
import numpy as np
from fastapi import APIRouter, Body, Depends, File, Form, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from diarize.errors import MetadataError, SpeakerExistsError, SpeakerNotFoundError
from diarize.voiceprints.enrollment import MAX_METADATA_BYTES, check_metadata
from diarize.result import Result

from .auth import Tenant
from .core import Service
from .errors import ApiError
from .fields import known_fields
from .models import (
    Appearance,
    Candidate,
    DiarizeOptions,
    EnrolledSpeaker,
    IdentifiedSpeaker,
    Identity,
    IdentifyResponse,
    SpeakerList,
    SpeakerPatch,
    Voice,
    VoiceAppearances,
    VoiceList,
)
from .routes import ERRORS, Svc
from .uploads import remove, spool, spool_path

T = TypeVar("T")
MAX_SAMPLES = 20
router = APIRouter(prefix="/v1", dependencies=[Depends(known_fields)],
                   responses={k: v for k, v in ERRORS.items() if k in (400, 401, 422)})
VOICE_ERRORS = {**ERRORS, 409: ERRORS[422] | {"description": "Name taken, or model mismatch"},
                503: ERRORS[503] | {"description": "Voiceprint store unavailable (see Retry-After)"}}


async def _store(svc: Service, fn: Callable[[Any], T]) -> T:
    """A voiceprint store call, off the event loop."""
    return await anyio.to_thread.run_sync(svc.voice.call, fn)


@contextlib.asynccontextmanager
async def _spooled(svc: Service, files: list[UploadFile]):
    """Uploads copied to the spool and header-checked; deleted afterwards whatever happens."""
    if not files:
        raise ApiError(422, "invalid_request", "send at least one audio file")
    if len(files) > MAX_SAMPLES:
        raise ApiError(422, "invalid_request", f"at most {MAX_SAMPLES} files per request")
    paths: list[Path] = []
    try:
        samples = []
        for upload in files:
            path = spool_path(svc.data_dir, upload.filename)
            paths.append(path)
            await run_in_threadpool(spool, upload, path)
            info = await svc.probe(path, DiarizeOptions(), upload.filename)
            if info.duration > svc.settings.sync_max_duration:
                raise ApiError(413, "audio_too_long", f"{upload.filename}: samples may last at most "
                                                      f"{svc.settings.sync_max_duration:g} s")
            samples.append((path, upload.filename, info))
        yield samples
    finally:
        for path in paths:
            remove(path)


def _metadata(raw: str | None) -> dict[str, Any] | None:
    """The enrollment form's metadata field, parsed and checked as the library checks it (422 otherwise)."""
    if raw is None or raw == "":
        return None
    value = None
    if len(raw) <= MAX_METADATA_BYTES:
        with contextlib.suppress(ValueError, RecursionError):
            value = json.loads(raw)
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_metadata",
                       f"metadata must be a JSON object of at most {MAX_METADATA_BYTES // 1024} KiB")
    try:
        return check_metadata(value)
    except MetadataError as exc:
        raise ApiError(422, "invalid_metadata", str(exc)) from None


def _by_id(vp: Any, tenant: str, speaker_id: str) -> Any:
    for speaker in vp.list_speakers(tenant):
        if speaker.speaker_id == speaker_id:
            return speaker
    raise SpeakerNotFoundError(f"no enrolled speaker {speaker_id}")


def _named(vp: Any, tenant: str, name: str) -> bool:
    with contextlib.suppress(SpeakerNotFoundError):
        vp.speakers.get(tenant, name)
        return True
    return False


def _enroll(vp: Any, tenant: str, name: str, samples: list, *, new: bool, **fields: Any) -> Any:
    if new and _named(vp, tenant, name):
        raise SpeakerExistsError(f"a speaker named {name!r} is already enrolled; add samples to it instead")
    return vp.speakers.enroll(tenant, name, samples, consistency=vp.calibration.consistency,
                              model_id=vp.backend.model_id, **fields)


Files = Annotated[list[UploadFile], File(description="One or more audio samples of this one speaker.")]


@router.post("/speakers", status_code=201, response_model=EnrolledSpeaker, response_model_exclude_none=True,
             responses=VOICE_ERRORS, summary="Enroll a speaker", tags=["speakers"])
async def enroll(
    svc: Svc, tenant: Tenant, files: Files,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[str | None, Form(max_length=200)] = None,
    metadata: Annotated[str | None, Form(description="JSON object stored with the speaker")] = None,
):
    """Enroll a named voice from one or more clean samples (each passes the quality gates)."""
    meta = _metadata(metadata)
    if await _store(svc, lambda vp: _named(vp, tenant, name)):
        raise ApiError(409, "speaker_exists", f"a speaker named {name!r} is already enrolled")
    async with _spooled(svc, files) as spooled:
        samples = await svc.voice_samples(spooled)
    report = await _store(svc, lambda vp: _enroll(vp, tenant, name, samples, new=True, role=role, metadata=meta))
    return EnrolledSpeaker.of(report.speaker, report.warnings)


@router.get("/speakers", response_model=SpeakerList, response_model_exclude_none=True, summary="List enrolled speakers",
            tags=["speakers"])
async def list_speakers(svc: Svc, tenant: Tenant):
    speakers = await _store(svc, lambda vp: vp.list_speakers(tenant))
    return {"speakers": [EnrolledSpeaker.of(s) for s in speakers]}


@router.get("/speakers/{speaker_id}", response_model=EnrolledSpeaker, response_model_exclude_none=True,
            responses=VOICE_ERRORS, summary="One enrolled speaker", tags=["speakers"])
async def get_speaker(svc: Svc, tenant: Tenant, speaker_id: str):
    return EnrolledSpeaker.of(await _store(svc, lambda vp: _by_id(vp, tenant, speaker_id)))


@router.patch("/speakers/{speaker_id}", response_model=EnrolledSpeaker, response_model_exclude_none=True,
              responses=VOICE_ERRORS, summary="Rename a speaker or change its role and metadata", tags=["speakers"])
async def patch_speaker(svc: Svc, tenant: Tenant, speaker_id: str, patch: Annotated[SpeakerPatch, Body()]):
    def change(vp: Any) -> Any:
        speaker = _by_id(vp, tenant, speaker_id)
        if patch.name is not None and patch.name != speaker.name:
            speaker = vp.rename_speaker(tenant, speaker.name, patch.name)
        if patch.role is not None or patch.metadata is not None:
            speaker = vp.speakers.update(tenant, speaker.name, role=patch.role, metadata=patch.metadata)
        return speaker

    return EnrolledSpeaker.of(await _store(svc, change))


@router.delete("/speakers/{speaker_id}", status_code=204, responses=VOICE_ERRORS, summary="Delete a speaker",
               tags=["speakers"])
async def delete_speaker(svc: Svc, tenant: Tenant, speaker_id: str):
    await _store(svc, lambda vp: vp.delete_speaker(tenant, _by_id(vp, tenant, speaker_id).name))
    return Response(status_code=204)


@router.post("/speakers/{speaker_id}/samples", response_model=EnrolledSpeaker, response_model_exclude_none=True,
             responses=VOICE_ERRORS, summary="Add samples to an enrolled speaker", tags=["speakers"])
async def add_samples(svc: Svc, tenant: Tenant, speaker_id: str, files: Files):
    await _store(svc, lambda vp: _by_id(vp, tenant, speaker_id))
    async with _spooled(svc, files) as spooled:
        samples = await svc.voice_samples(spooled)
    report = await _store(svc, lambda vp: _enroll(vp, tenant, _by_id(vp, tenant, speaker_id).name, samples,
                                                  new=False))
    return EnrolledSpeaker.of(report.speaker, report.warnings)


@router.post("/identify", response_model=IdentifyResponse, response_model_exclude_none=True,
             responses=VOICE_ERRORS, summary="Who is speaking in this sample", tags=["speakers"])
async def identify(
    svc: Svc, tenant: Tenant,
    file: Annotated[UploadFile, File(description="A sample to identify (any number of speakers)")],
    top_k: Annotated[int, Form(ge=1, le=20, description="Candidates per diarized speaker")] = 5,
):
    """Diarize the sample, then rank the tenant's enrolled speakers for each voice in it."""
    async with _spooled(svc, [file]) as [(path, name, info)]:
        result = await svc.diarize_sample(path, info, name)
    library_result = Result.from_dict(result)

    def rank(vp: Any) -> list[IdentifiedSpeaker]:
        matches = {m.label: m for m in vp.identify(tenant, library_result)}
        out = []
        for speaker in library_result.speakers:
            candidates = []
            if speaker.centroid is not None:
                query = speaker.centroid / max(float(np.linalg.norm(speaker.centroid)), 1e-12)
                for enrolled, vector in vp.speakers.nearest(tenant, query, limit=top_k):
                    score = float(query @ vector)
                    candidates.append(Candidate(
                        speaker_id=enrolled.speaker_id, name=enrolled.name, role=enrolled.role,
                        score=round(score, 4), confidence=round(vp.calibration.confidence(score), 4),
                        matched=score >= vp.calibration.identify))
            m = matches.get(speaker.label)
            identity = None
            if m is not None and m.name:
                identity = Identity(speaker_id=m.speaker_id, name=m.name, role=m.role, score=round(m.score, 4),
                                    confidence=round(m.confidence, 4))
            out.append(IdentifiedSpeaker(speaker=speaker.label, talk_time=round(speaker.talk_time, 3),
                                         identity=identity, candidates=candidates))
        return out

    return IdentifyResponse(audio_duration=result["audio_duration"], speakers=await _store(svc, rank))


@router.get("/voices", response_model=VoiceList, summary="Voices heard across this tenant's jobs", tags=["voices"])
async def list_voices(svc: Svc, tenant: Tenant):
    voices = await _store(svc, lambda vp: vp.list_voices(tenant))
    return {"voices": [Voice(**v.to_dict()) for v in voices]}


@router.get("/voices/{voice_id}/appearances", response_model=VoiceAppearances, responses=VOICE_ERRORS,
            summary="Every job a voice was heard in", tags=["voices"])
async def appearances(svc: Svc, tenant: Tenant, voice_id: str):
    found = await _store(svc, lambda vp: vp.appearances(tenant, voice_id))
    return {"voice_id": voice_id, "appearances": [
        Appearance(file_id=a.file_id, speaker=a.label, talk_time=round(a.talk_time, 3), observed_at=a.observed_at)
        for a in found
    ]}
