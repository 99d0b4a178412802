"""Jobs that outlive the process: state in SQLite, results as JSON files, recovery on start.

A result file is written (and fsynced) before its job is marked succeeded, so a succeeded job
always has its result; a job left ``running`` by a crash is queued again or, after its last
attempt, marked failed, never dropped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from diarize.batch.outputs import write_atomic
from diarize.errors import DiarizeError

from .errors import library_error_code
from .pool import JOB, PoolClosed, Task, TaskCancelled, TaskTimeout, WorkerCrashed, WorkerPool

log = logging.getLogger("diarize.service")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    stage TEXT,
    progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    audio_path TEXT NOT NULL,
    filename TEXT,
    keep_audio INTEGER NOT NULL DEFAULT 0,
    audio_duration REAL,
    options TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    batch TEXT,
    transcript TEXT
);
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
"""
#: Every column a job record holds. Not ``transcript`` (up to 64 MB of words): only running the job reads it.
_RECORD_COLUMNS = ("id, tenant, status, created_at, updated_at, started_at, finished_at, stage, progress, attempts,"
                   " source, audio_path, filename, keep_audio, audio_duration, options, error_code, error_message,"
                   " batch")
_SELECT = f"SELECT {_RECORD_COLUMNS} FROM jobs"


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class JobRecord:
    id: str
    tenant: str
    status: str
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    stage: str | None
    progress: float
    attempts: int
    source: str
    audio_path: str
    filename: str | None
    keep_audio: bool
    audio_duration: float | None
    options: dict[str, Any]
    error_code: str | None
    error_message: str | None
    batch: dict[str, Any] | None = None

    def to_api(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in (
            "id", "status", "progress", "stage", "attempts", "source", "filename", "keep_audio", "audio_duration",
        )}  # fmt: skip
        out["options"] = {k: v for k, v in self.options.items() if k not in ("hints", "transcript")}
        out.update(
            created_at=_iso(self.created_at), updated_at=_iso(self.updated_at), started_at=_iso(self.started_at),
            finished_at=_iso(self.finished_at),
            error={"code": self.error_code, "message": self.error_message or ""} if self.error_code else None,
            result_url=f"/v1/jobs/{self.id}/result" if self.status == "succeeded" else None,
            batch=self.batch,
        )
        return out


class JobStore:
    """The jobs table (SQLite, WAL, synchronous=FULL) and the result files beside it."""

    def __init__(self, data_dir: Path) -> None:
        self.results_dir = data_dir / "results"
        self.audio_dir = data_dir / "job-audio"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "jobs.db", check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "batch" not in columns:
                self._db.execute("ALTER TABLE jobs ADD COLUMN batch TEXT")  # a database from before directory jobs
            if "transcript" not in columns:  # from before transcripts had their own column
                self._db.execute("ALTER TABLE jobs ADD COLUMN transcript TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args: tuple = ()) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._record(r) for r in rows]

    @staticmethod
    def _record(row: sqlite3.Row) -> JobRecord:
        data = dict(row)
        data["options"] = json.loads(data["options"])
        data["keep_audio"] = bool(data["keep_audio"])
        data["batch"] = json.loads(data["batch"]) if data.get("batch") else None
        return JobRecord(**data)

    def _execute(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def result_path(self, job_id: str) -> Path:
        return self.results_dir / f"{job_id}.json"

    def new_audio_path(self, suffix: str) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        return job_id, self.audio_dir / f"{job_id}{suffix}"

    def create(self, job_id: str, tenant: str, *, source: str, audio_path: str, filename: str | None,
               keep_audio: bool, audio_duration: float | None, options: dict[str, Any],
               batch: dict[str, Any] | None = None, transcript: list[dict[str, Any]] | None = None) -> JobRecord:
        """Queue a job; its ``transcript`` is kept apart from the record (see :meth:`transcript`)."""
        now = time.time()
        self._execute(
            "INSERT INTO jobs (id, tenant, status, created_at, updated_at, source, audio_path, filename, keep_audio,"
            " audio_duration, options, batch, transcript) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, tenant, now, now, source, audio_path, filename, int(keep_audio), audio_duration,
             json.dumps(options), None if batch is None else json.dumps(batch),
             None if transcript is None else json.dumps(transcript)),
        )
        return self.get(job_id)

    def transcript(self, job_id: str) -> list[dict[str, Any]] | None:
        """The job's transcript words, read only to run it (listing and polling jobs never parse them)."""
        with self._lock:
            row = self._db.execute("SELECT transcript FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row is not None and row[0] else None

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._rows(f"{_SELECT} WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def list(self, tenant: str, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        if status:
            return self._rows(f"{_SELECT} WHERE tenant = ? AND status = ? ORDER BY created_at DESC LIMIT ?",
                              (tenant, status, limit))
        return self._rows(f"{_SELECT} WHERE tenant = ? ORDER BY created_at DESC LIMIT ?", (tenant, limit))

    def count_unfinished(self, tenant: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        args: tuple = ()
        if tenant is not None:
            sql, args = sql + " AND tenant = ?", (tenant,)
        with self._lock:
            return self._db.execute(sql, args).fetchone()[0]

    def count(self, status: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0]

    def claim_next(self) -> JobRecord | None:
        """Mark the oldest queued job running (one more attempt) and return it."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 1"
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, updated_at = ?,"
                        " stage = 'queued', progress = 0 WHERE id = ?",
                        (now, now, row["id"]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(row["id"]) if row is not None else None

    def progress(self, job_id: str, stage: str, fraction: float) -> None:
        self._execute("UPDATE jobs SET stage = ?, progress = ?, updated_at = ? WHERE id = ? AND status = 'running'",
                      (stage, min(max(fraction, 0.0), 1.0), time.time(), job_id))

    def batch_progress(self, job_id: str, batch: dict[str, Any]) -> None:
        """A directory job's counters (files, done, failed, audio seconds); progress is files done / files."""
        fraction = batch["done"] / batch["files"] if batch["files"] else 0.0
        self._execute("UPDATE jobs SET stage = 'files', progress = ?, batch = ?, updated_at = ? WHERE id = ?"
                      " AND status = 'running'", (min(fraction, 1.0), json.dumps(batch), time.time(), job_id))

    def succeed(self, job_id: str, response: dict[str, Any]) -> None:
        if self.get(job_id) is None:  # deleted while it ran
            return
        write_atomic(self.result_path(job_id), json.dumps(response))
        now = time.time()
        self._execute(
            "UPDATE jobs SET status = 'succeeded', stage = 'done', progress = 1, finished_at = ?, updated_at = ?,"
            " audio_duration = ?, error_code = NULL, error_message = NULL WHERE id = ?",
            (now, now, response.get("audio_duration"), job_id),
        )

    def fail(self, job_id: str, code: str, message: str) -> None:
        now = time.time()
        self._execute(
            "UPDATE jobs SET status = 'failed', finished_at = ?, updated_at = ?, error_code = ?, error_message = ?"
            " WHERE id = ?",
            (now, now, code, message, job_id),
        )

    def requeue(self, job_id: str, *, refund_attempt: bool = False) -> None:
        self._execute(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, updated_at = ?,"
            " attempts = attempts - ? WHERE id = ?",
            (time.time(), int(refund_attempt), job_id),
        )

    def delete(self, job_id: str) -> None:
        self._execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        with contextlib.suppress(FileNotFoundError):
            self.result_path(job_id).unlink()

    def recover(self, max_attempts: int) -> dict[str, int]:
        """After a crash: finish jobs whose result was written, requeue or fail the interrupted ones."""
        counts = {"finished": 0, "requeued": 0, "failed": 0}
        for job in self._rows(f"{_SELECT} WHERE status = 'running'"):
            if self.result_path(job.id).exists():
                self.succeed(job.id, json.loads(self.result_path(job.id).read_text()))
                counts["finished"] += 1
            elif job.attempts < max_attempts:
                self.requeue(job.id)
                counts["requeued"] += 1
            else:
                self.fail(job.id, "interrupted",
                          f"the service stopped while running this job on each of its {job.attempts} attempts")
                counts["failed"] += 1
        return counts

    def referenced_audio(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT audio_path FROM jobs WHERE source = 'upload'")}


Finisher = Callable[[JobRecord, dict[str, Any], list[str]], dict[str, Any]]
#: Runs a directory job to its stored response, or None when ``stop`` ended it early.
BatchRunner = Callable[[JobRecord, threading.Event], "dict[str, Any] | None"]


class JobFailed(Exception):
    """A job that cannot run at all, with the error code and message its record gets."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class _BatchRun:
    stop: threading.Event
    thread: threading.Thread


class JobRunner:
    """Feeds queued jobs to the worker pool, at most ``concurrency`` at a time, in a background thread."""

    def __init__(self, store: JobStore, pool: WorkerPool, *, concurrency: int, max_attempts: int,
                 timeout: Callable[[float | None], float], finish: Finisher,
                 on_done: Callable[[JobRecord, str], None] = lambda job, status: None,
                 batch: BatchRunner | None = None, ready: Callable[[], bool] = lambda: True) -> None:
        self.store, self.pool = store, pool
        self.concurrency, self.max_attempts, self.timeout = concurrency, max_attempts, timeout
        self.finish, self.on_done, self.batch, self.ready = finish, on_done, batch, ready
        #: Held while a finished job's outcome is stored (voice observations, result) and while a job is deleted,
        #: so that a job deleted as it finishes leaves nothing behind.
        self.outcome_lock = threading.RLock()
        self._running: dict[str, Task | _BatchRun] = {}
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="diarize-jobs", daemon=True)

    def start(self) -> None:
        counts = self.store.recover(self.max_attempts)
        if any(counts.values()):
            log.warning("recovered jobs after a restart: %s", counts)
        self._thread.start()

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closing and (len(self._running) >= self.concurrency or not self.ready()):
                    self._wake.wait(0.2)
                if self._closing:
                    return
            job = self.store.claim_next()
            if job is None:
                with self._wake:
                    self._wake.wait(1.0)
                continue
            self._start(job)

    def _start(self, job: JobRecord) -> None:
        if job.batch is not None:
            self._start_batch(job)
            return
        options = job.options
        task = Task(
            "diarize",
            {"path": job.audio_path, "uri": job.id, **options.get("hints", {})},
            priority=JOB,
            timeout=self.timeout(job.audio_duration),
            on_progress=lambda stage, fraction: self.store.progress(job.id, stage, fraction),
        )
        with self._wake:
            self._running[job.id] = task
        try:
            self.pool.submit(task)
        except PoolClosed:
            self.store.requeue(job.id, refund_attempt=True)
            with self._wake:
                self._running.pop(job.id, None)
            return
        task.future.add_done_callback(lambda f: self._done(job, task, f))

    def _start_batch(self, job: JobRecord) -> None:
        run = _BatchRun(threading.Event(), threading.Thread(target=lambda: self._run_batch(job, run),
                                                            name=f"diarize-batch-{job.id[:8]}", daemon=True))
        with self._wake:  # started under the lock, so close() never finds a registered run it cannot join
            self._running[job.id] = run
            run.thread.start()

    def _run_batch(self, job: JobRecord, run: _BatchRun) -> None:
        """A directory job in its own thread: its files go to the pool as JOB tasks, a few at a time."""
        status = "failed"
        try:
            response = self.batch(job, run.stop)
            if response is None:  # stopped: deleted, or the service is shutting down
                if self._closing:
                    self.store.requeue(job.id, refund_attempt=True)
                return
            self.store.succeed(job.id, response)
            status = "succeeded"
        except PoolClosed:
            self.store.requeue(job.id, refund_attempt=True)
            return
        except JobFailed as exc:
            self.store.fail(job.id, exc.code, exc.message)
        except DiarizeError as exc:
            self.store.fail(job.id, library_error_code(exc)[1], str(exc))
        except Exception:
            log.exception("directory job %s failed", job.id)
            self.store.fail(job.id, "processing_failed", "the batch could not run")
        finally:
            with self._wake:
                self._running.pop(job.id, None)
                self._wake.notify_all()
        self.on_done(job, status)

    def _done(self, job: JobRecord, task: Task, future: Future) -> None:
        try:
            self._record(job, task, future)
        except Exception:
            log.exception("could not record the outcome of job %s", job.id)
        finally:
            with self._wake:
                self._running.pop(job.id, None)
                self._wake.notify_all()

    def _record(self, job: JobRecord, task: Task, future: Future) -> None:
        exc = future.exception()
        if isinstance(exc, TaskCancelled):
            return
        if isinstance(exc, PoolClosed) or (self._closing and isinstance(exc, WorkerCrashed)):
            self.store.requeue(job.id, refund_attempt=True)
            return
        status = "failed"
        if exc is None:
            with self.outcome_lock:
                if self.store.get(job.id) is None:  # deleted while it ran: store nothing of it
                    return
                try:
                    response = self.finish(job, future.result(), task.warnings)
                except DiarizeError as err:
                    self.store.fail(job.id, library_error_code(err)[1], self._message(job, err))
                else:
                    self.store.succeed(job.id, response)
                    status = "succeeded"
        elif isinstance(exc, DiarizeError):
            self.store.fail(job.id, library_error_code(exc)[1], self._message(job, exc))
        elif isinstance(exc, (WorkerCrashed, TaskTimeout)) and job.attempts < self.max_attempts:
            self.store.requeue(job.id)
            self.wake()
            return
        elif isinstance(exc, TaskTimeout):
            self.store.fail(job.id, "processing_timeout", str(exc))
        elif isinstance(exc, WorkerCrashed):
            self.store.fail(job.id, "worker_crashed", f"{exc} (attempt {job.attempts} of {self.max_attempts})")
        else:
            log.error("job %s failed: %s", job.id, exc)
            self.store.fail(job.id, "processing_failed", "processing failed inside the worker")
        self.on_done(job, status)

    @staticmethod
    def _message(job: JobRecord, exc: Exception) -> str:
        return str(exc).replace(job.audio_path, job.filename or "audio")

    def cancel(self, job_id: str) -> None:
        """Stop a running job; a directory job is waited for, so nothing writes its outputs afterwards."""
        with self._wake:
            task = self._running.get(job_id)
        if isinstance(task, _BatchRun):
            task.stop.set()
            task.thread.join(60)
        elif task is not None:
            self.pool.cancel(task)

    @property
    def running(self) -> int:
        return len(self._running)

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify_all()
            batches = [run for run in self._running.values() if isinstance(run, _BatchRun)]
        for run in batches:  # their jobs go back to the queue and resume after the restart
            run.stop.set()
        for run in batches:
            run.thread.join(30)
        if self._thread.is_alive():
            self._thread.join(5)
