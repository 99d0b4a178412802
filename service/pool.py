"""A bounded pool of worker processes, each loading the models once and running one task at a time.

CPU-heavy work never runs in the service process: a worker that crashes or hangs is killed and
replaced without taking the server down, and the task it held fails with a typed error (or is retried).
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from diarize.errors import DiarizeError

log = logging.getLogger("diarize.service")

SYNC, JOB = 0, 1  # priorities: synchronous requests go before queued jobs, but for the jobs' share
#: While both wait, at least this share of the tasks a free worker takes are jobs (strict priority let four
#: synchronous clients starve 100 queued jobs: one finished in 154 s).
JOB_SHARE = 0.25


class QueueFull(Exception):
    """No room for another synchronous task."""


class WorkerCrashed(Exception):
    """The worker process died while running the task (every allowed attempt)."""


class TaskTimeout(Exception):
    """The task ran past its time limit; its worker was killed."""


class TaskCancelled(Exception):
    """The task was cancelled before it finished."""


class PoolClosed(Exception):
    """The pool is shutting down."""


class FairQueue:
    """The pool's queue: synchronous tasks first, except that jobs get ``job_share`` of the picks while both
    kinds wait. Within a kind, the oldest task (lowest id: a retried task keeps its place) goes first;
    stop markers (priority -1) go before everything. ``put``/``get`` as ``queue.PriorityQueue``'s."""

    def __init__(self, job_share: float = JOB_SHARE) -> None:
        if not 0 <= job_share <= 1:
            raise ValueError("job_share must be between 0 and 1")
        self.job_share = job_share
        self._heaps: dict[int, list] = {-1: [], SYNC: [], JOB: []}
        self._credit = 0.0
        self._cond = threading.Condition()

    def put(self, item: tuple[int, int, Any]) -> None:
        with self._cond:
            heapq.heappush(self._heaps[item[0] if item[0] in self._heaps else JOB], (item[1], item))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> tuple[int, int, Any]:
        """The next item (raises ``queue.Empty`` after ``timeout`` seconds without one)."""
        with self._cond:
            if not self._cond.wait_for(self._waiting, timeout):
                raise queue.Empty
            return heapq.heappop(self._heaps[self._next_kind()])[1]

    def _waiting(self) -> int:
        return sum(len(h) for h in self._heaps.values())

    def _next_kind(self) -> int:
        if self._heaps[-1]:
            return -1
        if not self._heaps[JOB]:
            return SYNC
        if not self._heaps[SYNC]:
            return JOB
        self._credit += self.job_share  # both wait: the jobs earn their share of this pick
        if self._credit >= 1.0:
            self._credit -= 1.0
            return JOB
        return SYNC


@dataclass(eq=False)
class Task:
    """One unit of work: ``kind`` names a handler in the worker, ``payload`` its arguments."""

    kind: str
    payload: dict[str, Any]
    priority: int = SYNC
    timeout: float | None = None
    retries: int = 0
    on_progress: Callable[[str, float], None] | None = None
    on_start: Callable[[], None] | None = None
    id: int = 0
    future: Future = field(default_factory=Future)
    cancelled: bool = False
    attempts: int = 0
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- worker process side


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the service process dies (no orphaned workers)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(conn: Connection, pipeline_config: dict[str, Any], threads: int) -> None:
    """Entry point of a worker process: load the pipeline, then serve tasks until told to stop."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch
    from threadpoolctl import threadpool_limits

    from diarize.config import PipelineConfig
    from diarize.pipeline import DiarizationPipeline

    from . import tasks

    try:
        pipeline = DiarizationPipeline(PipelineConfig.model_validate(pipeline_config))
        torch.set_num_threads(threads)
        threadpool_limits(threads)  # numpy's BLAS was loaded before OMP_NUM_THREADS took effect
    except Exception as exc:  # a model that cannot load is reported, not retried in a loop here
        conn.send(("broken", repr(exc)))
        return
    conn.send(("ready", (pipeline.embedding_backend.model_id, pipeline.embedding_backend.dimension)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, kind, payload = message
        last = [None, -1.0]

        def progress(stage: str, fraction: float) -> None:
            if stage != last[0] or fraction - last[1] >= 0.02:
                last[:] = [stage, fraction]
                conn.send(("progress", task_id, stage, float(fraction)))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = tasks.HANDLERS[kind](pipeline, payload, progress)
                reply = ("done", task_id, out)
            except DiarizeError as exc:
                reply = ("error", task_id, exc)
            except Exception as exc:  # reported to the service as a failed task, the worker lives on
                reply = ("fail", task_id, f"{type(exc).__name__}: {exc}")
        notes = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
        try:
            conn.send((*reply, notes))
        except Exception:  # an unpicklable library error still reaches the service as its message
            conn.send(("error", task_id, DiarizeError(str(reply[2])), notes))


# ---------------------------------------------------------------- service side


class _Slot:
    """One worker process and the thread that feeds it tasks."""

    def __init__(self, pool: "WorkerPool", index: int) -> None:
        self.pool, self.index = pool, index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.ready = False
        self.task: Task | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"diarize-worker-{index}", daemon=True)

    def _spawn(self) -> bool:
        ctx = self.pool.ctx
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main, args=(child, self.pool.pipeline_config, self.pool.threads),
            name=f"diarize-worker-{self.index}", daemon=True,
        )
        process.start()
        child.close()
        self.process, self.conn = process, parent
        while not self.pool.closing:
            if not wait([parent, process.sentinel], timeout=0.5):
                continue
            try:
                kind, detail = parent.recv()
            except (EOFError, OSError):
                kind, detail = "broken", f"exit code {process.exitcode}"
            if kind == "ready":
                model_id, dimension = detail
                if self.pool.model_id is None and self.pool.on_ready is not None:
                    self.pool.on_ready(model_id, dimension)
                self.pool.model_id = model_id
                self.ready = True
                return True
            self.pool.load_error = detail
            log.error("worker %d could not load the models: %s", self.index, detail)
            self._stop()
            return False
        return False

    def _stop(self) -> None:
        self.ready = False
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def _alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def _run(self) -> None:
        backoff = 1.0
        while not self.pool.closing:
            if not self._alive():
                if self.process is not None:
                    self._stop()
                    self.pool.restarts += 1
                if not self._spawn():
                    time.sleep(min(backoff, 30.0))
                    backoff *= 2
                    continue
                backoff = 1.0
            try:
                _, _, task = self.pool.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if task is None:
                break
            if task.cancelled or task.future.done():
                self.pool._finished(task)
                continue
            self._execute(task)
        self._shutdown()

    def _shutdown(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(None)
            except OSError:
                pass
        if self.process is not None:
            self.process.join(2)
        self._stop()

    def _execute(self, task: Task) -> None:
        with self.lock:
            self.task = task
        task.attempts += 1
        try:
            if task.on_start:
                task.on_start()
            self.conn.send((task.id, task.kind, task.payload))
        except (OSError, ValueError):  # the worker died while idle: requeue without counting the attempt
            task.attempts -= 1
            self._release(task, requeue=True)
            return
        deadline = None if task.timeout is None else time.monotonic() + task.timeout
        outcome: tuple[str, Any] | None = None
        while outcome is None:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([self.conn, self.process.sentinel], timeout=min(remaining or 1.0, 1.0))
            if task.cancelled:
                outcome = ("cancelled", None)
            elif self.conn in ready:
                try:
                    message = self.conn.recv()
                except (EOFError, OSError):
                    outcome = ("crashed", None)
                    continue
                if message[0] == "progress":
                    if task.on_progress:
                        task.on_progress(message[2], message[3])
                    continue
                task.warnings = list(message[3])
                outcome = (message[0], message[2])
            elif ready:
                outcome = ("crashed", None)
            elif deadline is not None and time.monotonic() >= deadline:
                outcome = ("timeout", None)
        kind, value = outcome
        if kind in ("crashed", "timeout", "cancelled"):
            self._stop()
            self.pool.restarts += 1
        if kind == "done":
            task.future.set_result(value)
        elif kind == "error":
            task.future.set_exception(value)
        elif kind == "fail":
            task.future.set_exception(RuntimeError(value))
        elif kind == "cancelled":
            task.future.set_exception(TaskCancelled("cancelled"))
        elif kind == "timeout":
            task.future.set_exception(TaskTimeout(f"task ran past its {task.timeout:.0f} s limit"))
        elif task.attempts <= task.retries:
            log.warning("worker %d died running task %d; retrying", self.index, task.id)
            self._release(task, requeue=True)
            return
        else:
            task.future.set_exception(WorkerCrashed(f"the worker process died {task.attempts} time(s) on this task"))
        self._release(task, requeue=False)

    def _release(self, task: Task, requeue: bool) -> None:
        with self.lock:
            self.task = None
        if requeue and not self.pool.closing:
            self.pool.queue.put((task.priority, task.id, task))
        else:
            self.pool._finished(task)

    def kill_if_running(self, task: Task) -> None:
        with self.lock:
            if self.task is task and self.process is not None:
                self.process.kill()


class WorkerPool:
    """``size`` worker processes behind one :class:`FairQueue`; synchronous admission is bounded."""

    def __init__(self, size: int, pipeline_config: dict[str, Any], threads: int = 1, queue_limit: int = 2,
                 job_share: float = JOB_SHARE) -> None:
        self.size, self.pipeline_config, self.threads, self.queue_limit = size, pipeline_config, threads, queue_limit
        self.ctx = multiprocessing.get_context("spawn")
        self.queue = FairQueue(job_share)
        self.closing = False
        self.model_id: str | None = None
        self.on_ready: Callable[[str, int], None] | None = None
        self.load_error: str | None = None
        self.restarts = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._open: dict[int, Task] = {}
        self._slots = [_Slot(self, i) for i in range(size)]

    def start(self) -> None:
        for slot in self._slots:
            slot.thread.start()

    @property
    def ready_workers(self) -> int:
        return sum(slot.ready for slot in self._slots)

    @property
    def busy_workers(self) -> int:
        return sum(slot.task is not None for slot in self._slots)

    def depth(self, priority: int | None = None) -> int:
        """Tasks submitted and not yet running (of one priority, or all)."""
        with self._lock:
            running = {id(s.task) for s in self._slots if s.task is not None}
            return sum(
                1 for t in self._open.values()
                if id(t) not in running and (priority is None or t.priority == priority)
            )

    def submit(self, task: Task) -> Task:
        """Queue ``task``; a synchronous one raises QueueFull when every worker and queue slot is taken."""
        if self.closing:
            raise PoolClosed("the service is shutting down")
        with self._lock:
            if task.priority == SYNC:
                open_sync = sum(1 for t in self._open.values() if t.priority == SYNC)
                if open_sync >= self.size + self.queue_limit:
                    raise QueueFull(f"{open_sync} requests are already waiting or running")
            task.id = next(self._ids)
            self._open[task.id] = task
        self.queue.put((task.priority, task.id, task))
        return task

    def cancel(self, task: Task) -> None:
        """Stop ``task``: dropped if still queued, its worker killed (and replaced) if running."""
        task.cancelled = True
        if not task.future.done() and not any(slot.task is task for slot in self._slots):
            task.future.set_exception(TaskCancelled("cancelled"))
        for slot in self._slots:
            slot.kill_if_running(task)

    def _finished(self, task: Task) -> None:
        with self._lock:
            self._open.pop(task.id, None)
        if not task.future.done():
            task.future.set_exception(TaskCancelled("cancelled") if task.cancelled else PoolClosed("shutting down"))

    def wait_ready(self, timeout: float) -> bool:
        """Block until every worker has loaded its models (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.ready_workers < self.size and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.ready_workers == self.size

    def close(self) -> None:
        """Fail what is queued, stop the workers and their threads."""
        self.closing = True
        with self._lock:
            pending = list(self._open.values())
        for task in pending:
            if not task.future.done() and not any(s.task is task for s in self._slots):
                task.future.set_exception(PoolClosed("the service is shutting down"))
        for i, _ in enumerate(self._slots):
            self.queue.put((-1, -1 - i, None))
        for slot in self._slots:
            if slot.task is not None:
                slot.kill_if_running(slot.task)
        for slot in self._slots:
            if slot.thread.is_alive():
                slot.thread.join(10)
