"""What worker processes run: each handler takes the worker's pipeline, a payload and a progress callback."""

from __future__ import annotations

import warnings
from typing import Any, Callable

from diarize.audio import Audio, load_audio
from diarize.errors import CorruptAudioError, DiarizeError
from diarize.multichannel import MultichannelDiarizer

Progress = Callable[[str, float], None]


def load(payload: dict[str, Any], config: Any, mono: bool = True) -> Audio:
    """Decode; a truncated file is refused unless ``accept_truncated`` (then its warning is passed on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = load_audio(payload["path"], config, mono=mono)
    for w in caught:
        text = str(w.message)
        if "truncated" in text and not payload.get("accept_truncated"):
            raise CorruptAudioError(text.replace("using what is there", "refused (this server needs whole files)"))
        warnings.warn(text, UserWarning, stacklevel=2)
    return audio


def diarize(pipeline: Any, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Decode and diarize one file (each channel on its own with ``multichannel``); the result as ``to_dict()``."""
    multichannel = bool(payload.get("multichannel"))
    audio = load(payload, pipeline.config.audio, mono=not multichannel)
    result = (MultichannelDiarizer(pipeline) if multichannel else pipeline)(
        audio,
        num_speakers=payload.get("num_speakers"),
        min_speakers=payload.get("min_speakers"),
        max_speakers=payload.get("max_speakers"),
        progress=progress,
    )
    if payload.get("uri"):
        result.uri = payload["uri"]
    return result.to_dict(with_centroids=True)


def batch_file(pipeline: Any, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """One file of a directory job, diarized by the batch ``Worker`` around this worker's pipeline (its payload)."""
    from diarize.batch import BatchOptions
    from diarize.batch.worker import Worker

    out = Worker(BatchOptions.model_validate_json(payload["options"]), pipeline=pipeline).process(payload["path"])
    truncated = [w for w in out.get("warnings", ()) if "truncated" in w]
    if truncated and not payload.get("accept_truncated"):
        out = {"error": truncated[0].replace("using what is there", "refused (this server needs whole files)"),
               "seconds": out["seconds"]}
    if "error" in out:
        out["error"] = out["error"].replace(payload["path"], payload["name"])
    return out


def voice_samples(pipeline: Any, payload: dict[str, Any], progress: Progress) -> list[Any]:
    """Quality gates and embedding of enrollment samples (``EnrollmentSample`` each); errors name the file."""
    from diarize.voiceprints.enrollment import prepare_sample

    out = []
    for i, (path, name) in enumerate(zip(payload["paths"], payload["names"])):
        progress("sample", i / len(payload["paths"]))
        try:
            audio = load({**payload, "path": path}, pipeline.config.audio)
            out.append(prepare_sample(audio, pipeline.embedding_backend, diarizer=pipeline,
                                      separation=payload["separation"]))
        except DiarizeError as exc:
            message = str(exc).replace(path, name)
            message = message[len("audio: "):] if message.startswith("audio: ") else message
            raise type(exc)(message if message.startswith(name) else f"{name}: {message}") from None
    return out


def sleep(pipeline: Any, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Test helper: hold the worker for ``seconds`` (used to fill the queue and to crash a running task)."""
    import os
    import signal
    import time

    if payload.get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(payload.get("seconds", 0)))
    return {"slept": payload.get("seconds", 0)}


HANDLERS: dict[str, Callable[[Any, dict[str, Any], Progress], Any]] = {
    "diarize": diarize, "voice_samples": voice_samples, "sleep": sleep,
    "batch_file": batch_file,
}
