"""Uploads: a body-size limit at the ASGI level, spooling to the data folder, header probes, the archive jail."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path

from fastapi import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diarize.audio import MIN_DURATION, AudioInfo, audio_info
from diarize.errors import DiarizeError

from .errors import ApiError, error_body, from_library

_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class BodyTooLarge(Exception):
    """The request body passed the upload limit."""


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes: refused by Content-Length up front, or cut off while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        exceeded = started = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def tracking(message: Message) -> None:
            # A body parser (FastAPI's form and JSON parsing) may catch BodyTooLarge and answer 400 itself:
            # once the limit was passed, whatever the app answers becomes the 413.
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except BodyTooLarge:
            if not started:
                started = True
                await self._refuse(send)

    def _message(self) -> str:
        return f"request body exceeds the upload limit of {self.limit / 1048576:g} MiB"

    async def _refuse(self, send: Send) -> None:
        import json

        body = json.dumps(error_body("upload_too_large", self._message())).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def safe_suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix
    return suffix.lower() if _SUFFIX.match(suffix) else ""


def spool(upload: UploadFile, destination: Path) -> int:
    """Copy an upload to ``destination`` (private to the service); returns its size in bytes."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    upload.file.seek(0)
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
        return out.tell()


def spool_path(data_dir: Path, filename: str | None) -> Path:
    return data_dir / "spool" / f"{uuid.uuid4().hex}{safe_suffix(filename)}"


def remove(path: Path | str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def probe(path: Path | str) -> AudioInfo:
    """Read an audio file's header; unusable audio becomes its 4xx ApiError."""
    try:
        info = audio_info(os.fspath(path))
    except DiarizeError as exc:
        raise from_library(exc) from None
    except (TypeError, ValueError, OSError, RuntimeError) as exc:
        raise ApiError(422, "corrupt_audio", f"cannot read the audio header: {exc}") from None
    if not info.duration >= MIN_DURATION:
        raise ApiError(422, "empty_audio", f"{path}: {info.duration:.3f} s of audio (at least {MIN_DURATION:g} s "
                                           "is needed)")
    return info


def _no_archive() -> ApiError:
    return ApiError(403, "archive_disabled", "this server has no archive root: upload the audio instead")


def archive_root(root_template: str | None, tenant: str) -> Path:
    """The tenant's archive root, resolved; 403 when the server has none."""
    if not root_template:
        raise _no_archive()
    return Path(root_template.replace("{tenant}", tenant)).resolve()


def within(root: Path, target: Path) -> bool:
    """Whether the resolved ``target`` is ``root`` or below it."""
    return target == root or root in target.parents


def resolve_archive_path(root_template: str | None, tenant: str, requested: str, folders: bool = False) -> Path:
    """``requested`` inside the tenant's archive root (symlinks resolved), or 403/404/422.

    A file, or with ``folders`` also a folder (the root itself included).
    """
    if not root_template:
        raise _no_archive()
    if "\x00" in requested or not requested.strip():
        raise ApiError(422, "invalid_path", "path must be a non-empty file path")
    try:
        root = archive_root(root_template, tenant)
        candidate = Path(requested)
        target = (candidate if candidate.is_absolute() else root / candidate).resolve()
        inside = within(root, target) and (folders or target != root)
        exists = inside and (target.is_file() or (folders and target.is_dir()))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ApiError(422, "invalid_path", f"cannot use this path: {exc}") from None
    if not inside:
        raise ApiError(403, "path_outside_archive", "path is outside the archive root")
    if not exists:
        raise ApiError(404, "audio_not_found", f"no such file in the archive: {requested}")
    return target
