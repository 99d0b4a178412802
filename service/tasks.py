"""What worker processes run: each handler takes the worker's pipeline, a payload and a progress callback."""

from __future__ import annotations

from typing import Any, Callable

from diarize.audio import load_audio

Progress = Callable[[str, float], None]


def diarize(pipeline: Any, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Decode and diarize one file; the result as ``Result.to_dict()`` with centroids."""
    audio = load_audio(payload["path"], pipeline.config.audio)
    result = pipeline(
        audio,
        num_speakers=payload.get("num_speakers"),
        min_speakers=payload.get("min_speakers"),
        max_speakers=payload.get("max_speakers"),
        progress=progress,
    )
    if payload.get("uri"):
        result.uri = payload["uri"]
    return result.to_dict(with_centroids=True)


def sleep(pipeline: Any, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Test helper: hold the worker for ``seconds`` (used to fill the queue and to crash a running task)."""
    import os
    import signal
    import time

    if payload.get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(payload.get("seconds", 0)))
    return {"slept": payload.get("seconds", 0)}


HANDLERS: dict[str, Callable[[Any, dict[str, Any], Progress], Any]] = {"diarize": diarize, "sleep": sleep}
