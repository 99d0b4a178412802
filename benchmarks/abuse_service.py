"""Abuse suite: a careless client and an attacker against ``diarize serve`` on 127.0.0.1, bounded in time.

    python -m benchmarks.abuse_service [--examples 20] [--malformed 240] [--methods 5000]
                                       [--transcript-mb 16] [--readme service/README.md]

Fresh data dir, real keys for two tenants, loopback only. Phases: schemathesis over every operation;
a seeded corpus of malformed audio through ``POST /v1/diarize``, ``/v1/jobs``, ``diarize run`` (in
process) and ``diarize batch``; hostile speaker metadata, then a restart; made-up methods and paths
against the metrics; jobs with large transcripts listed concurrently; an oversized chunked upload and
the spool; and a deletion audit: a speaker and two jobs deleted over the API, then the store's files
scanned for their vectors' float32 bytes, names and ids. Exit status 1 when any check fails; with
``--readme`` the figures replace the section between the abuse_service markers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import psutil
import soundfile as sf

from .load_service import DATA, ROOT, Sampler, _cpu_model, free_port, speech_file, write_readme

KEYS = {"acme": "abuse-acme", "globex": "abuse-globex"}
UPLOAD_MB = 24  # the server's upload limit: above the large transcripts, below the oversized upload
START, END = "<!-- abuse_service:start -->", "<!-- abuse_service:end -->"


def headers(tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


class Served:
    """``diarize serve`` in its own process group over one data dir; its stderr goes to a log file."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DIARIZE_DATA_DIR": str(data_dir), "DIARIZE_WORKERS": "1",
                    "DIARIZE_API_KEYS": ",".join(f"{t}:{k}" for t, k in KEYS.items()), **env}
        self.log = data_dir.parent / "server.log"
        self.process: subprocess.Popen | None = None
        self.sampler: Sampler | None = None
        self.peak_mib = 0

    def start(self) -> "Served":
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "diarize.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        self.sampler = Sampler(self.process.pid)
        self.sampler.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{self.url}/readyz", timeout=5).json()
                if ready["workers_ready"] and ready["voiceprints"]:
                    return self
            time.sleep(0.5)
        raise RuntimeError("the server did not become ready with its voiceprint store")

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.sampler.stop.set()
        self.sampler.join()
        self.peak_mib = max(self.peak_mib, round(self.sampler.peak_total / 2**20))
        self.process = None

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300)

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback")


class Tally:
    """Requests sent, by outcome: 5xx and dropped connections are failures."""

    def __init__(self) -> None:
        self.requests = self.server_errors = self.dropped = 0
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []

    def send(self, http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        self.requests += 1
        try:
            response = http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.dropped += 1
            self.failures.append(f"{method} {url}: {type(exc).__name__}")
            return None
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            self.server_errors += 1
            self.failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
        return response

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)


# ---------------------------------------------------------------- the malformed-audio corpus


def _encoded(fmt: str, seconds: float = 0.6, rate: int = 16000, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).normal(size=t.size)
    buffer = io.BytesIO()
    sf.write(buffer, np.tile(x[:, None], (1, channels)).astype(np.float32), rate, format=fmt)
    return buffer.getvalue()


def malformed_corpus(n: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``n`` broken audio files (name, bytes): truncations, flipped bytes, absurd header fields, random bytes
    behind audio magic numbers, empty and tiny files. Seeded: the same ``n`` gives the same corpus."""
    rng = np.random.default_rng(seed)
    bases = {"wav": _encoded("WAV"), "flac": _encoded("FLAC"), "ogg": _encoded("OGG"), "mp3": _encoded("MP3"),
             "stereo.wav": _encoded("WAV", channels=2)}
    fixed: list[tuple[str, bytes]] = [("empty.wav", b""), ("one.wav", b"R"), ("text.flac", b"hello\n" * 50)]
    wav = bases["wav"]
    for offset, fmt, values in ((24, "<I", (0, 1, 100, 3999, 0xFFFFFFFF)), (22, "<H", (0, 65, 0xFFFF)),
                                (34, "<H", (0, 7, 64, 0xFFFF)), (20, "<H", (0, 2, 0xFFFF)),
                                (40, "<I", (0, 1, 0xFFFFFFFF)), (4, "<I", (0, 8, 0xFFFFFFFF))):
        for v in values:
            data = bytearray(wav)
            data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, v)
            fixed.append((f"field{offset}-{v}.wav", bytes(data)))
    magics = [b"RIFF", b"fLaC", b"OggS", b"ID3\x03", b"\x1aE\xdf\xa3", b"FORM", b"caff", b"\xff\xfb"]
    suffixes = [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".webm", ".aac"]
    yield from fixed[:n]
    for i in range(max(0, n - len(fixed))):
        kind = i % 4
        base_name = list(bases)[i % len(bases)]
        base = bases[base_name]
        if kind == 0:  # truncated anywhere, header included
            cut = int(rng.integers(1, len(base)))
            yield f"cut{i}-{cut}.{base_name}", base[:cut]
        elif kind == 1:  # bytes flipped in the header
            data = bytearray(base)
            for at in rng.integers(0, min(64, len(data)), size=int(rng.integers(1, 6))):
                data[at] ^= int(rng.integers(1, 256))
            yield f"head{i}.{base_name}", bytes(data)
        elif kind == 2:  # bytes flipped in the body
            data = bytearray(base)
            for at in rng.integers(64, len(data), size=int(rng.integers(1, 50))):
                data[at] ^= int(rng.integers(1, 256))
            yield f"body{i}.{base_name}", bytes(data)
        else:  # random bytes behind a magic number, any extension
            magic = magics[i % len(magics)]
            yield f"noise{i}{suffixes[i % len(suffixes)]}", magic + rng.bytes(int(rng.integers(0, 20000)))


# ---------------------------------------------------------------- phases


def phase_schemathesis(served: Served, tally: Tally, examples: int) -> dict[str, Any]:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    before = tally.requests
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            tally.requests += 1
            try:
                response = case.call(base_url=served.url, headers=headers(), timeout=120)
            except Exception as exc:  # noqa: BLE001 - a dropped connection is what we count
                tally.dropped += 1
                tally.failures.append(f"schemathesis {case.method} {case.path}: {type(exc).__name__}")
                return
            tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                tally.server_errors += 1
                tally.failures.append(f"schemathesis {case.method} {case.path}: {response.status_code}")

        check()
    return {"operations": len(operations), "requests": tally.requests - before}


def phase_malformed_api(served: Served, tally: Tally, corpus: list[tuple[str, bytes]]) -> dict[str, Any]:
    refused = accepted = 0
    jobs = []
    with served.http() as http:
        for i, (name, data) in enumerate(corpus):
            r = tally.send(http, "POST", "/v1/diarize", headers=headers(), files={"file": (name, data)})
            if r is not None:
                refused += 400 <= r.status_code < 500
                accepted += r.status_code in (200, 202)
            if i % 4 == 0:
                r = tally.send(http, "POST", "/v1/jobs", headers=headers(), files={"file": (name, data)})
                if r is not None and r.status_code == 202:
                    jobs.append(r.json()["id"])
        deadline = time.monotonic() + 300
        unfinished = list(jobs)
        while unfinished and time.monotonic() < deadline:
            unfinished = [j for j in unfinished if http.get(f"/v1/jobs/{j}", headers=headers()).json()["status"]
                          in ("queued", "running")]
            time.sleep(0.5)
        codes = [http.get(f"/v1/jobs/{j}", headers=headers()).json().get("error") or {} for j in jobs]
        internal = [c for c in codes if c.get("code") in ("processing_failed", "internal_error")]
        tally.check(not unfinished, f"{len(unfinished)} malformed-audio jobs never finished")
        tally.check(not internal, f"malformed-audio jobs failed internally: {internal[:3]}")
        tally.check(http.get("/readyz").status_code == 200, "not ready after the malformed corpus")
    return {"files": len(corpus), "refused_4xx": refused, "diarized": accepted, "jobs": len(jobs),
            "jobs_failed_internally": len(internal)}


def phase_malformed_cli(corpus: list[tuple[str, bytes]], folder: Path, tally: Tally) -> dict[str, Any]:
    """Every file through ``diarize run`` in this process (typer's runner; the runs share one loaded pipeline),
    then the folder through ``diarize batch`` in a subprocess: exit 0 or 1, never a traceback."""
    from typer.testing import CliRunner

    import diarize.pipeline
    from diarize.cli import app

    loaded: dict[str, Any] = {}
    real = diarize.pipeline.DiarizationPipeline

    def shared(config: Any) -> Any:
        key = config.model_dump_json()
        if key not in loaded:
            loaded[key] = real(config)
        return loaded[key]

    folder.mkdir(parents=True)
    for name, data in corpus:
        (folder / name).write_bytes(data)
    sampler = Sampler(os.getpid())
    sampler.start()
    runner, crashes, failed = CliRunner(), [], 0
    started = time.monotonic()
    diarize.pipeline.DiarizationPipeline = shared
    try:
        results = [(name, runner.invoke(app, ["run", str(folder / name), "-q", "--profile", "fast"]))
                   for name, _ in corpus]
    finally:
        diarize.pipeline.DiarizationPipeline = real
    for name, result in results:
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crashes.append(f"{name}: {type(result.exception).__name__}: {result.exception}")
        elif result.exit_code not in (0, 1):
            crashes.append(f"{name}: exit {result.exit_code}")
        failed += result.exit_code == 1
    run_seconds = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    out = folder.parent / "batch-out"
    batch = subprocess.Popen([sys.executable, "-m", "diarize.cli", "batch", str(folder), "--out", str(out),
                              "--workers", "0", "--no-fingerprint", "-q", "--profile", "fast"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    batch_sampler = Sampler(batch.pid)
    batch_sampler.start()
    _, stderr = batch.communicate(timeout=900)
    batch_sampler.stop.set()
    batch_sampler.join()
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()] \
        if (out / "index.jsonl").exists() else []
    tally.check(not crashes, f"diarize run crashed: {crashes[:3]}")
    tally.check(batch.returncode in (0, 1) and "Traceback" not in stderr, f"diarize batch: exit {batch.returncode}")
    tally.check(len(rows) == len(corpus), f"diarize batch indexed {len(rows)} of {len(corpus)} files")
    return {"run_files": len(corpus), "run_refused": failed, "run_crashes": len(crashes),
            "run_seconds": round(run_seconds, 1), "run_peak_mib": round(sampler.peak_total / 2**20),
            "batch_exit": batch.returncode, "batch_failed": sum(r["status"] == "failed" for r in rows),
            "batch_ok": sum(r["status"] == "ok" for r in rows), "batch_peak_mib": round(batch_sampler.peak_total / 2**20)}


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _reader(reader: str, n: int) -> list[np.ndarray]:
    files = sorted((DATA / "librispeech" / "test-other" / reader).glob("*.flac"))[:n]
    return [sf.read(f, dtype="float32")[0] for f in files]


def phase_metadata(served: Served, tally: Tally) -> dict[str, Any]:
    """Hostile metadata on enrollment and PATCH: every one a 4xx, then the store reopens for every tenant."""
    with served.http() as http:
        ids = {}
        for tenant, name, reader in (("acme", "Ana Auditname", "2033"), ("globex", "Gus Keepername", "3080")):
            clips = _reader(reader, 2)
            r = tally.send(http, "POST", "/v1/speakers", headers=headers(tenant), data={"name": name},
                           files=[("files", (f"s{i}.wav", _wav(c))) for i, c in enumerate(clips)])
            tally.check(r is not None and r.status_code == 201, f"enrollment of {name}: {r and r.text[:200]}")
            ids[tenant] = r.json()["id"] if r is not None and r.status_code == 201 else "missing"
        bodies = [json.dumps({"metadata": _nested(200)}), '{"metadata": {"x": NaN}}', '{"metadata": {"x": Infinity}}',
                  json.dumps({"metadata": {"x": 1 << 80}}), json.dumps({"metadata": {"x": "y" * (3 << 20)}}),
                  "[" * 5000, json.dumps({"metadata": [1, 2]})]
        refused = 0
        for body in bodies:
            r = tally.send(http, "PATCH", f"/v1/speakers/{ids['acme']}",
                           headers=headers() | {"content-type": "application/json"}, content=body)
            refused += r is not None and 400 <= r.status_code < 500
        for raw in ("[" * 5000, json.dumps(_nested(40)), '{"x": NaN}', "x" * 20000):
            r = tally.send(http, "POST", "/v1/speakers", headers=headers(), data={"name": "Zed", "metadata": raw},
                           files=[("files", ("s.wav", b"RIFF"))])
            refused += r is not None and 400 <= r.status_code < 500
    served.stop()
    served.start()
    with served.http() as http:
        listed = {t: http.get("/v1/speakers", headers=headers(t)) for t in KEYS}
        ok = all(r.status_code == 200 and len(r.json()["speakers"]) == 1 for r in listed.values())
        tally.check(ok, "a tenant's speakers were unreadable after the hostile metadata and a restart")
    return {"hostile_requests": len(bodies) + 4, "refused_4xx": refused, "tenants_readable_after_restart": ok,
            "speaker_ids": ids}


def phase_cardinality(served: Served, tally: Tally, n: int) -> dict[str, Any]:
    with served.http() as http:
        before = len(http.get("/metrics").text)
        for i in range(n):
            tally.send(http, f"M{i}X", f"/v1/jobs/{i}" if i % 2 else f"/made/up/{i}")
        text = http.get("/metrics").text
    series = len([line for line in text.splitlines() if line and not line.startswith("#")])
    tally.check(len(text) < before + 50_000, f"/metrics grew from {before} to {len(text)} bytes")
    return {"requests": n, "metrics_bytes_before": before, "metrics_bytes_after": len(text), "series_after": series}


def phase_transcripts(served: Served, tally: Tally, megabytes: float) -> dict[str, Any]:
    words = []
    size, i = 0, 0
    while size < megabytes * 2**20:
        word = {"word": f"w{i}", "start": round((i % 200) * 0.01, 3), "end": round((i % 200) * 0.01 + 0.005, 3)}
        words.append(word)
        size += len(json.dumps(word)) + 2
        i += 1
    body = json.dumps(words).encode()
    with served.http() as http:
        ids = []
        for _ in range(3):
            r = tally.send(http, "POST", "/v1/jobs", headers=headers(),
                           files={"file": ("t.wav", _wav(np.zeros(32000, np.float32) + 0.01)), "transcript": ("w.json", body)})
            if r is not None and r.status_code == 202:
                ids.append(r.json()["id"])
        rss_before = _tree_rss(served)
        timings: list[float] = []

        def listing() -> None:
            started = time.monotonic()
            with served.http() as c:
                response = tally.send(c, "GET", "/v1/jobs", headers=headers())
            timings.append(time.monotonic() - started)
            tally.check(response is not None and response.status_code == 200, "GET /v1/jobs failed")

        threads = [threading.Thread(target=listing) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rss_after = _tree_rss(served)
    tally.check(len(ids) == 3, f"only {len(ids)} of 3 transcript jobs were accepted")
    tally.check(max(timings) < 10, f"four concurrent job lists took up to {max(timings):.1f} s")
    return {"jobs": len(ids), "transcript_mb": round(len(body) / 2**20, 1), "words": len(words),
            "concurrent_lists": 4, "slowest_list_s": round(max(timings), 2),
            "server_growth_mib": round((rss_after - rss_before) / 2**20)}


def _tree_rss(served: Served) -> int:
    root = psutil.Process(served.process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def phase_spool(served: Served, tally: Tally) -> dict[str, Any]:
    def chunks() -> Iterator[bytes]:
        yield b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range((UPLOAD_MB + 2) * 16):
            yield b"\0" * 65536
        yield b"\r\n--XX--\r\n"

    with served.http() as http:
        r = tally.send(http, "POST", "/v1/diarize", headers=headers() | {"content-type": "multipart/form-data; boundary=XX"},
                       content=chunks())
        tally.check(r is not None and r.status_code == 413, f"oversized chunked upload: {r and r.status_code}")
    leftovers = list((served.data_dir / "spool").glob("*"))
    tally.check(not leftovers, f"{len(leftovers)} files left in the spool")
    return {"chunked_oversize_status": r.status_code if r is not None else None, "spool_leftovers": len(leftovers)}


def phase_deletion(served: Served, tally: Tally, speaker_ids: dict[str, str]) -> dict[str, Any]:
    """Two jobs of real speech, then their observations and the enrolled speaker read from the store's files,
    deleted over the API, and the files scanned for what was deleted."""
    from diarize.voiceprints.store import EmbeddedStore

    with served.http() as http:
        jobs = []
        for reader in ("1688", "367"):
            r = tally.send(http, "POST", "/v1/jobs", headers=headers(),
                           files={"file": ("call.wav", _wav(np.concatenate(_reader(reader, 2))))})
            jobs.append(r.json()["id"])
        for job in jobs:
            deadline = time.monotonic() + 300
            while http.get(f"/v1/jobs/{job}", headers=headers()).json()["status"] in ("queued", "running"):
                tally.check(time.monotonic() < deadline, f"job {job} never finished")
                time.sleep(0.5)
    served.stop()
    needles: list[bytes] = [b"Ana Auditname", *(j.encode() for j in jobs)]
    kept: list[bytes] = [b"Gus Keepername"]
    with EmbeddedStore(served.data_dir) as store:
        for model_id, dimension in store.models().items():
            coll = store.collection(model_id, dimension)
            for point in coll.scroll("acme", with_vectors=True):
                p = point.payload
                if p.get("speaker_id") or p.get("file_id") in jobs:
                    needles.append(point.vector.tobytes())
            kept += [p.vector.tobytes() for p in coll.scroll("globex", with_vectors=True)]
    root = served.data_dir / "voiceprints"
    before = traces(root, needles)
    served.start()
    with served.http() as http:
        deleted = [tally.send(http, "DELETE", f"/v1/speakers/{speaker_ids['acme']}", headers=headers())]
        deleted += [tally.send(http, "DELETE", f"/v1/jobs/{j}", headers=headers()) for j in jobs]
        tally.check(all(r is not None and r.status_code == 204 for r in deleted), "a deletion was refused")
    served.stop()
    left, kept_found = traces(root, needles), traces(root, kept)
    tally.check(left == 0, f"{left} of {len(needles)} deleted vectors, names or ids still in the store's files")
    tally.check(kept_found == len(kept), f"only {kept_found} of {len(kept)} kept items still in the store")
    served.start()
    return {"items": len(needles), "vectors": len(needles) - 1 - len(jobs), "found_before": before,
            "found_after": left, "other_tenant_kept": f"{kept_found}/{len(kept)}"}


def traces(root: Path, needles: list[bytes]) -> int:
    """How many of ``needles`` occur in any file under ``root`` (the stores preallocate zeroed files)."""
    blobs = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            blobs.append(data[:len(data.rstrip(b"\0")) + 64])
    return sum(any(n in b for b in blobs) for n in needles)


def _phase(name: str, fn: Callable[[], dict], results: dict) -> None:
    started = time.monotonic()
    print(f"{name} ...", file=sys.stderr, flush=True)
    results[name] = fn() | {"seconds": round(time.monotonic() - started, 1)}
    print(f"{name}: {results[name]}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not (DATA / "librispeech").is_dir():
        raise SystemExit(f"real speech not found under {DATA}")
    tally, results = Tally(), {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="diarize-abuse-") as tmp:
        served = Served(Path(tmp) / "data", DIARIZE_MAX_UPLOAD_MB=str(UPLOAD_MB)).start()
        try:
            corpus = list(malformed_corpus(args.malformed))
            _phase("schemathesis", lambda: phase_schemathesis(served, tally, args.examples), results)
            _phase("malformed_api", lambda: phase_malformed_api(served, tally, corpus), results)
            _phase("metadata", lambda: phase_metadata(served, tally), results)
            _phase("cardinality", lambda: phase_cardinality(served, tally, args.methods), results)
            _phase("transcripts", lambda: phase_transcripts(served, tally, args.transcript_mb), results)
            _phase("spool", lambda: phase_spool(served, tally), results)
            speaker_ids = results["metadata"].pop("speaker_ids")
            _phase("deletion", lambda: phase_deletion(served, tally, speaker_ids), results)
            with served.http() as http:
                tally.check(http.get("/readyz").status_code == 200, "not ready at the end")
        finally:
            served.stop()
            tracebacks = served.tracebacks()
        _phase("malformed_cli", lambda: phase_malformed_cli(corpus, Path(tmp) / "corpus", tally), results)
    tally.check(tracebacks == 0, f"{tracebacks} tracebacks in the server log")
    return {
        "date": dt.date.today().isoformat(),
        "command": " ".join(["python -m benchmarks.abuse_service", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "cpu_model": _cpu_model(), "load_average_before": round(load_before[0], 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "requests": tally.requests, "server_errors": tally.server_errors, "dropped": tally.dropped,
        "server_tracebacks": tracebacks, "server_peak_mib": served.peak_mib,
        "statuses": dict(sorted(tally.statuses.items())), "failures": tally.failures[:20],
        "phases": results,
    }


def markdown(r: dict[str, Any]) -> str:
    p = r["phases"]
    s, api, cli, meta = p["schemathesis"], p["malformed_api"], p["malformed_cli"], p["metadata"]
    card, tr, sp, de = p["cardinality"], p["transcripts"], p["spool"], p["deletion"]
    rows = [
        ("schemathesis (every operation)", f"{s['requests']} requests over {s['operations']} operations"),
        ("malformed audio, API", f"{api['files']} files to `/v1/diarize` ({api['refused_4xx']} refused 4xx, "
                                 f"{api['diarized']} diarized), {api['jobs']} to `/v1/jobs` "
                                 f"({api['jobs_failed_internally']} failed internally)"),
        ("malformed audio, `diarize run`", f"{cli['run_files']} files: {cli['run_refused']} refused (exit 1), "
                                           f"{cli['run_crashes']} crashes, peak {cli['run_peak_mib']} MiB"),
        ("malformed audio, `diarize batch`", f"exit {cli['batch_exit']}: {cli['batch_failed']} failed, "
                                             f"{cli['batch_ok']} ok, peak {cli['batch_peak_mib']} MiB"),
        ("hostile metadata (deep, NaN, 3 MB, ...)", f"{meta['refused_4xx']} of {meta['hostile_requests']} refused "
                                                     f"4xx; every tenant readable after a restart: "
                                                     f"{'yes' if meta['tenants_readable_after_restart'] else 'no'}"),
        ("made-up methods and paths", f"{card['requests']} requests: `/metrics` {card['metrics_bytes_before']} → "
                                      f"{card['metrics_bytes_after']} bytes ({card['series_after']} series)"),
        ("large transcripts", f"{tr['jobs']} jobs of {tr['transcript_mb']} MB; {tr['concurrent_lists']} concurrent "
                              f"`GET /v1/jobs`: slowest {tr['slowest_list_s']} s, server {tr['server_growth_mib']:+d} MiB"),
        ("oversized chunked upload, spool", f"{sp['chunked_oversize_status']}; {sp['spool_leftovers']} files left "
                                            "in the spool"),
        ("deletion audit (speaker + 2 jobs)", f"{de['found_before']} of {de['items']} items ({de['vectors']} vectors, "
                                              f"the name, the job ids) in the store's files before, "
                                              f"{de['found_after']} after; other tenant kept {de['other_tenant_kept']}"),
    ]
    return "\n".join([
        START,
        f"Measured {r['date']} with `{r['command']}` on {r['machine']} ({r['cpu_model']}); the machine was shared "
        f"with other jobs (load average {r['load_average_before']} before, {r['load_average_after']} after).",
        "",
        f"**{r['requests']} requests: {r['server_errors']} 5xx, {r['dropped']} dropped connections, "
        f"{r['server_tracebacks']} tracebacks in the server log; server peak {r['server_peak_mib']} MiB (with its "
        f"worker).** {'No check failed.' if not r['failures'] else 'Failed: ' + '; '.join(r['failures'][:5])}",
        "",
        "| phase | result |",
        "| --- | --- |",
        *[f"| {a} | {b} |" for a, b in rows],
        END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="schemathesis examples per operation")
    parser.add_argument("--malformed", type=int, default=240, help="malformed audio files")
    parser.add_argument("--methods", type=int, default=5000, help="requests with made-up methods")
    parser.add_argument("--transcript-mb", type=float, default=16.0, help="size of each large transcript")
    parser.add_argument("--readme", type=Path, default=None, help="write the figures into this markdown file")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.readme:
        write_readme(args.readme, markdown(result), START, END, heading="")
    sys.exit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
