"""Where files are diarized: in this process, or in a pool of worker processes that load the models once.

A pool takes one task per free worker (:meth:`free`, :meth:`submit`) and hands back finished outcomes
(:meth:`poll`). A worker that dies (segfault, OOM kill) fails only the file it held and is replaced.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from .errors import BatchError
from .options import BatchOptions
from .worker import Worker

_MAX_START_FAILURES = 3


@dataclass(frozen=True)
class Task:
    index: int
    path: str


@dataclass(frozen=True)
class Outcome:
    index: int
    payload: dict[str, Any]


class Pool(Protocol):
    slots: int
    threads: int

    def free(self) -> bool: ...

    def submit(self, task: Task) -> None: ...

    def poll(self, timeout: float) -> list[Outcome]: ...

    def close(self, cancel: bool = False) -> None: ...


class InlinePool:
    """Diarize in the calling process (``workers=0``), one file per :meth:`poll`."""

    slots = 1

    def __init__(self, options: BatchOptions, threads: int) -> None:
        self.threads = threads
        self.worker = _start_inline(options, threads)
        self.task: Task | None = None

    def free(self) -> bool:
        return self.task is None

    def submit(self, task: Task) -> None:
        self.task = task

    def poll(self, timeout: float) -> list[Outcome]:
        if self.task is None:
            return []
        task, self.task = self.task, None
        return [Outcome(task.index, self.worker.process(task.path))]

    def close(self, cancel: bool = False) -> None:
        self.task = None


def _start_inline(options: BatchOptions, threads: int) -> Worker:
    try:
        return Worker(options, threads)
    except Exception as exc:
        raise BatchError(f"cannot load the models: {exc}") from exc


class _Proc:
    def __init__(self, ctx: Any, options_json: str, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, options_json, threads), daemon=True,
                                   name="diarize-batch-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.task: Task | None = None


class ProcessPool:
    """``workers`` spawned processes, each with ``threads`` torch threads and its own models."""

    def __init__(self, options: BatchOptions, workers: int, threads: int) -> None:
        self.slots, self.threads = workers, threads
        self._ctx = multiprocessing.get_context("spawn")
        self._args = (options.model_dump_json(), threads)
        self._start_failures = 0
        self._procs = [_Proc(self._ctx, *self._args) for _ in range(workers)]

    def free(self) -> bool:
        return any(p.task is None for p in self._procs)

    def submit(self, task: Task) -> None:
        proc = next(p for p in self._procs if p.task is None)
        try:
            proc.conn.send(task)
        except OSError:  # it died idle: the task goes to its replacement
            proc = self._respawn(proc)
            proc.conn.send(task)
        proc.task = task

    def poll(self, timeout: float) -> list[Outcome]:
        waiting = {p.conn: p for p in self._procs}
        waiting.update({p.process.sentinel: p for p in self._procs})
        outcomes: list[Outcome] = []
        for ready in wait(list(waiting), timeout):
            proc = waiting[ready]
            if proc not in self._procs:
                continue
            try:
                while proc.conn.poll():
                    self._receive(proc, proc.conn.recv(), outcomes)
            except (EOFError, OSError):
                pass
            if not proc.process.is_alive():
                self._replace(proc, outcomes)
        return outcomes

    def _receive(self, proc: _Proc, message: tuple, outcomes: list[Outcome]) -> None:
        kind = message[0]
        if kind == "ready":
            proc.ready, self._start_failures = True, 0
        elif kind == "init-error":
            self.close(cancel=True)
            raise BatchError(f"cannot load the models: {message[1]}")
        elif kind == "done" and proc.task is not None and message[1] == proc.task.index:
            outcomes.append(Outcome(proc.task.index, message[2]))
            proc.task = None

    def _replace(self, proc: _Proc, outcomes: list[Outcome]) -> None:
        proc.process.join()
        code = proc.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        task = proc.task
        if not proc.ready:  # died loading the models: its task never started and goes to the replacement
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self.close(cancel=True)
                raise BatchError(f"worker processes keep dying while loading the models ({how})")
        elif task is not None:
            outcomes.append(Outcome(task.index, {"error": f"the worker process died ({how}) on this file"}))
            task = None
        fresh = self._respawn(proc)
        if task is not None:
            fresh.task = task
            fresh.conn.send(task)

    def _respawn(self, proc: _Proc) -> _Proc:
        proc.process.join()
        proc.conn.close()
        fresh = _Proc(self._ctx, *self._args)
        self._procs[self._procs.index(proc)] = fresh
        return fresh

    def close(self, cancel: bool = False) -> None:
        """Stop the workers: politely after the last task, or at once (``cancel``: files in flight are lost)."""
        for p in self._procs:
            if cancel:
                p.process.kill()
            else:
                try:
                    p.conn.send(None)
                except OSError:
                    pass
        for p in self._procs:
            p.process.join(timeout=None if cancel else 30)
            if p.process.is_alive():
                p.process.kill()
                p.process.join()
            p.conn.close()
        self._procs = []


def _serve(conn: Connection, options_json: str, threads: int) -> None:
    """Worker process: load the models, then answer tasks until told to stop or the driver goes away."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    try:
        worker = Worker(BatchOptions.model_validate_json(options_json), threads)
    except Exception as exc:
        conn.send(("init-error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(("done", task.index, worker.process(task.path)))


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the driver dies, even by kill -9, instead of finishing a file nobody collects."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)
