"""One JSON error shape, ``{"error": {"code", "message"}}``, for everything the service refuses."""

from __future__ import annotations

import logging
import re

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from diarize.errors import (
    AudioError,
    AudioNotFoundError,
    AudioTooLongError,
    ConfigError,
    CorruptAudioError,
    DiarizeError,
    EmptyAudioError,
    EnrollmentError,
    IdentificationError,
    MetadataError,
    ModelMismatchError,
    SpeakerExistsError,
    SpeakerNotFoundError,
    StoreError,
    UnsupportedAudioError,
    VoiceNotFoundError,
)

log = logging.getLogger("diarize.service")


class ApiError(Exception):
    """An error answered to the client as is."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~>-])/(?:[\w.@+~-]+/)*[\w.@+~-]+/?")


def redact(message: str, data_dir: object = None) -> str:
    """``message`` without server paths: the data folder becomes ``<data_dir>``, any other absolute path ``<path>``."""
    if data_dir is not None:
        message = redact_data_dir(message, data_dir)
    return _ABSOLUTE_PATH.sub("<path>", message)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


_LIBRARY = [  # most specific first
    (AudioTooLongError, 413, "audio_too_long"),
    (AudioNotFoundError, 404, "audio_not_found"),
    (UnsupportedAudioError, 415, "unsupported_audio"),
    (CorruptAudioError, 422, "corrupt_audio"),
    (EmptyAudioError, 422, "empty_audio"),
    (AudioError, 422, "invalid_audio"),
    (ConfigError, 422, "invalid_options"),
    (IdentificationError, 422, "invalid_options"),
    (SpeakerNotFoundError, 404, "not_found"),
    (VoiceNotFoundError, 404, "not_found"),
    (SpeakerExistsError, 409, "speaker_exists"),
    (MetadataError, 422, "invalid_metadata"),
    (EnrollmentError, 422, "enrollment_rejected"),
    (ModelMismatchError, 409, "model_mismatch"),
    (StoreError, 503, "store_unavailable"),
    (DiarizeError, 422, "unprocessable"),
]


def from_library(exc: DiarizeError) -> ApiError:
    """The API error for a library error (audio, hints, voiceprints)."""
    for cls, status, code in _LIBRARY:
        if isinstance(exc, cls):
            return ApiError(status, code, str(exc))
    raise TypeError(exc)  # unreachable: DiarizeError is last


def library_error_code(exc: DiarizeError) -> tuple[int, str]:
    err = from_library(exc)
    return err.status, err.code


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid_request", 429: "too_many_requests",
}  # fmt: skip


def _response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header"))
        parts.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the OpenAPI schema lists at ``path`` (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


def _public(request: Request, status: int, message: str) -> str:
    """What a client may read of an error message: never the data folder, and no server path at all in a 5xx."""
    service = getattr(request.app.state, "service", None)
    if service is not None:
        message = redact_data_dir(message, service.settings.data_dir)
    return redact(message) if status >= 500 else message


def redact_data_dir(message: str, data_dir: object) -> str:
    """``message`` with the data folder (as configured and resolved) replaced by ``<data_dir>``."""
    for form in {str(data_dir), str(Path(str(data_dir)).resolve())}:
        if len(form) > 1:
            message = message.replace(form, "<data_dir>")
    return message


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return _response(exc.status, exc.code, _public(request, exc.status, exc.message), exc.headers)

    @app.exception_handler(DiarizeError)
    async def _library(request: Request, exc: DiarizeError) -> JSONResponse:
        err = from_library(exc)
        return _response(err.status, err.code, _public(request, err.status, err.message))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "server_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(app, request.url.path))
        return _response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _response(500, "internal_error", "internal error; the request was not processed")
