"""Unknown request fields are refused (422 naming the field), never silently dropped; names that other speech
APIs use get a hint saying what to send here instead."""

from __future__ import annotations

import difflib
import json
from typing import Any, Iterable

from fastapi import Request, params

from .errors import ApiError

#: Field names of other diarization APIs (pyannote, whisperX, AssemblyAI) and what this one takes instead.
HINTS = {
    "num_speakers": "send speakers_expected=N",
    "min_speakers": 'send speaker_options={"min_speakers_expected": N}',
    "max_speakers": 'send speaker_options={"max_speakers_expected": N}',
    "audio_url": "this service does not fetch URLs: upload the audio as the multipart part 'file' "
                 "(or name a file under the archive root with 'path' on /v1/jobs)",
}


def unknown_field(name: str, allowed: Iterable[str], where: str = "", code: str = "unknown_field") -> ApiError:
    """The 422 for a field nobody reads: its name, and what to send instead (a known alias, or a close name);
    inside an option's JSON (``where``) the code stays the options' own."""
    allowed = sorted(allowed)
    hint = HINTS.get(name) if not where else None
    if hint is None:
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(allowed)}"
    field = f"{where}.{name}" if where else name
    return ApiError(422, code, f"{field}: unknown field; {hint}")


def _form_fields(dependant: Any) -> list[Any]:
    fields = [f for f in dependant.body_params if isinstance(f.field_info, params.Form)]
    for sub in dependant.dependencies:
        fields += _form_fields(sub)
    return fields


async def known_fields(request: Request) -> None:
    """Router dependency: 422 for a form field, or a JSON key sent to a form route, that the route does not take
    (JSON bodies of model routes are checked by their models, which forbid extra fields)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    allowed = {f.alias for f in _form_fields(dependant)} if dependant is not None else set()
    if not allowed:
        return
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        sent: Iterable[str] = (await request.form()).keys()
    elif content_type.startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        sent = body.keys() if isinstance(body, dict) else ()
    else:
        return
    for name in sent:
        if name not in allowed:
            raise unknown_field(name, allowed)
