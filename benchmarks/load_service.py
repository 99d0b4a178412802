"""Load test of the HTTP service: N clients post M-second speech files to uvicorn on 127.0.0.1 for a while.

    python -m benchmarks.load_service [--clients 8] [--seconds 120] [--audio 60] [--workers N]
                                      [--readme benchmarks/README.md]

Starts ``diarize serve`` in its own process group with a fresh data dir, waits until it is ready,
runs the clients (each honours ``Retry-After`` on 429), samples the RSS of the server and its
workers every 0.25 s, then stops the server. Counts as an error anything but 200 and 429.
With ``--readme`` the figures replace the section between the load_service markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DIARIZE_DATA", ROOT.parent / "shared" / "data"))
KEY = "bench-key"
START, END = "<!-- load_service:start -->", "<!-- load_service:end -->"


def speech_file(seconds: float, seed: int = 0) -> bytes:
    """A conversation of LibriSpeech test-other readers, cut to ``seconds``, as 16-bit WAV bytes."""
    rng = np.random.default_rng(seed)
    readers = sorted(p for p in (DATA / "librispeech" / "test-other").iterdir() if p.is_dir())[:3]
    clips = {r.name: sorted(r.glob("*.flac")) for r in readers}
    pieces, total, turn = [], 0, 0
    while total < seconds * 16000:
        reader = readers[turn % len(readers)].name
        audio, rate = sf.read(clips[reader][turn // len(readers) % len(clips[reader])], dtype="float32")
        assert rate == 16000
        gap = np.zeros(int(rng.uniform(0.3, 0.8) * 16000), np.float32)
        pieces += [gap, audio]
        total += len(gap) + len(audio)
        turn += 1
    signal_ = np.concatenate(pieces)[: int(seconds * 16000)]
    buffer = io.BytesIO()
    sf.write(buffer, signal_, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sampler(threading.Thread):
    """Peak RSS of a process and its children (sum, and the largest single process)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_total = self.peak_single = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                self.peak_total = max(self.peak_total, sum(rss))
                self.peak_single = max(self.peak_single, max(rss, default=0))
            except psutil.Error:
                pass
            self.stop.wait(0.25)


def client_loop(url: str, body: bytes, until: float, records: list, lock: threading.Lock) -> None:
    with httpx.Client(base_url=url, timeout=600, headers={"Authorization": f"Bearer {KEY}"}) as http:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                response = http.post("/v1/diarize", files={"file": ("talk.wav", body, "audio/wav")})
                status, retry = response.status_code, response.headers.get("Retry-After")
                ok = status == 200 and response.json()["audio_duration"] > 0
            except (httpx.HTTPError, ValueError) as exc:
                status, retry, ok = type(exc).__name__, None, False
            elapsed = time.monotonic() - started
            with lock:
                records.append({"status": status, "latency": elapsed, "ok": ok, "at": started})
            if status == 429:
                time.sleep(min(float(retry or 1), max(0.0, until - time.monotonic())))


def run(args: argparse.Namespace) -> dict:
    body = speech_file(args.audio)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="diarize-load-") as data_dir:
        env = {**os.environ, "DIARIZE_DATA_DIR": data_dir, "DIARIZE_API_KEYS": f"bench:{KEY}"}
        if args.workers:
            env["DIARIZE_WORKERS"] = str(args.workers)
        server = subprocess.Popen(
            [sys.executable, "-m", "diarize.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            sampler = Sampler(server.pid)
            sampler.start()
            deadline = time.monotonic() + 180
            ready = None
            while time.monotonic() < deadline:
                try:
                    ready = httpx.get(f"{url}/readyz", timeout=5)
                    if ready.status_code == 200 and ready.json()["workers_ready"] == ready.json()["workers"]:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise RuntimeError("the server did not become ready")
            workers = ready.json()["workers"]
            load_before = os.getloadavg()
            records: list[dict] = []
            lock = threading.Lock()
            started = time.monotonic()
            until = started + args.seconds
            clients = [threading.Thread(target=client_loop, args=(url, body, until, records, lock))
                       for _ in range(args.clients)]
            for c in clients:
                c.start()
            for c in clients:
                c.join()
            wall = time.monotonic() - started
            load_after = os.getloadavg()
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            still_ready = httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            sampler.stop.set()
            sampler.join()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            server.stderr.close()
    ok = [r for r in records if r["ok"]]
    rejected = [r for r in records if r["status"] == 429]
    errors = [r for r in records if not r["ok"] and r["status"] != 429]
    latencies = np.array([r["latency"] for r in ok]) if ok else np.array([np.nan])
    audio_seconds = _metric(metrics, 'diarize_audio_seconds_processed_total{kind="sync"}')
    return {
        "date": dt.date.today().isoformat(),
        "command": " ".join(["python -m benchmarks.load_service", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
                   f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "cpu_model": _cpu_model(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "clients": args.clients, "seconds": round(wall, 1), "audio_seconds_per_file": args.audio,
        "workers": workers,
        "requests": len(records), "ok": len(ok), "rejected_429": len(rejected), "errors": len(errors),
        "error_statuses": sorted({str(r["status"]) for r in errors}),
        "p50_s": round(float(np.percentile(latencies, 50)), 2),
        "p95_s": round(float(np.percentile(latencies, 95)), 2),
        "max_s": round(float(latencies.max()), 2),
        "audio_seconds_processed": audio_seconds,
        "realtime_factor": round(audio_seconds / wall, 2) if audio_seconds else None,
        "peak_rss_total_mib": round(sampler.peak_total / 2**20),
        "peak_rss_process_mib": round(sampler.peak_single / 2**20),
        "server_ready_after": still_ready,
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    return 0.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown(r: dict) -> str:
    return "\n".join([
        START,
        f"Measured {r['date']} with `{r['command']}` on {r['machine']} ({r['cpu_model']}); the machine was shared "
        f"with other jobs (load average {r['load_average_before'][0]} before, {r['load_average_after'][0]} after).",
        "",
        "| clients | audio per request | duration | workers | requests | 200 | 429 | errors | p50 | p95 | max "
        "| audio processed | peak RSS (server + workers) | peak RSS (one process) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {r['clients']} | {r['audio_seconds_per_file']:g} s | {r['seconds']:g} s | {r['workers']} | {r['requests']} "
        f"| {r['ok']} | {r['rejected_429']} | {r['errors']} | {r['p50_s']} s | {r['p95_s']} s | {r['max_s']} s "
        f"| {r['audio_seconds_processed']:g} s ({r['realtime_factor']}x real time) | {r['peak_rss_total_mib']} MiB "
        f"| {r['peak_rss_process_mib']} MiB |",
        "",
        "Latencies are those of the 200 answers (upload to response, including the wait for a worker); 429 answers "
        "(queue full, `Retry-After` honoured by the clients) are deliberate back-pressure, not errors. "
        f"The server was still ready after the run: {'yes' if r['server_ready_after'] else 'no'}.",
        END,
    ])


def write_readme(path: Path, block: str, start: str = START, end: str = END,
                 heading: str = "## HTTP service under load\n\n") -> None:
    """Put ``block`` (which begins with ``start`` and ends with ``end``) in place of the README's previous one, or
    at its end under ``heading``."""
    text = path.read_text()
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + heading + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--audio", type=float, default=60.0, help="seconds of speech per request")
    parser.add_argument("--workers", type=int, default=None, help="DIARIZE_WORKERS (default: the service's)")
    parser.add_argument("--readme", type=Path, default=None, help="write the figures into this markdown file")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.readme:
        write_readme(args.readme, markdown(result))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
