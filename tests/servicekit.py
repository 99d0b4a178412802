"""Helpers for the HTTP service tests: an app under TestClient, a uvicorn server in a subprocess, audio bytes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"acme": "key-acme", "globex": "key-globex"}
DEV_KEYS = ",".join(f"{t}:{k}" for t, k in KEYS.items())


# Until the voiceprints branch ships measured thresholds for the default model, tests give the service
# provisional ones through its settings (DIARIZE_VOICEPRINT_CALIBRATION).
PROVISIONAL_CALIBRATION = {"identify": 0.805, "link": 0.82, "link_member": 0.85, "consistency": 0.75,
                           "separation": 0.65, "confidence_a": 84.8897, "confidence_b": -66.3008}


def calibration_file(folder: Path) -> Path | None:
    """A calibration file for the default model when the library has none, else None."""
    from diarize.errors import VoiceprintError
    from diarize.voiceprints import load_calibration

    try:
        load_calibration("resemblyzer-ge2e")
        return None
    except VoiceprintError:
        path = folder / "calibration.json"
        path.write_text(json.dumps(PROVISIONAL_CALIBRATION))
        return path


def auth(tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


def error_of(response) -> dict:
    """The ``error`` object of an error response, after checking it has the one error shape."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


def wait_job(http, job_id: str, until=lambda job: job["status"] not in ("queued", "running"), timeout=300) -> dict:
    """Poll ``GET /v1/jobs/{id}`` until ``until(job)`` (by default: finished) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}", headers=auth()).json()
        if until(job):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id}: {job}")


def wav_bytes(samples: np.ndarray, sample_rate: int = 16000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=fmt)
    return buffer.getvalue()


def tone(seconds: float = 2.0, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def wait_ready(get, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if get("/readyz").status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError("the service did not become ready")


@contextlib.contextmanager
def client(data_dir: Path, **settings) -> Iterator[TestClient]:
    """The real app (one worker process unless told otherwise) under TestClient, ready to serve."""
    options = {"data_dir": data_dir, "workers": 1, "api_keys": DEV_KEYS, **settings}
    app = create_app(Settings(**options))
    with TestClient(app, raise_server_exceptions=False) as c:
        wait_ready(c.get)
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``diarize serve`` in its own process group on 127.0.0.1; stopped (or killed) by the test."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.env = {**os.environ, "DIARIZE_DATA_DIR": str(data_dir), "DIARIZE_API_KEYS": DEV_KEYS,
                    "DIARIZE_WORKERS": "1", **env}
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "diarize.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        with httpx.Client(base_url=self.url, timeout=5) as c:
            wait_ready(c.get)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process.stderr.close()
        self.process = None

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)
