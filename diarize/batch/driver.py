"""The batch driver: plans the job, feeds a pool, and alone writes outputs, the journal and voiceprints.

Finished files are committed (voice ids recorded, JSON and RTTM written, journal appended) by this
process only. With fingerprinting they are committed in input order, so voice ids do not depend on
which worker finished first, and a run killed and restarted gives the same outputs as one that was not.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..result import Result
from .errors import BatchError
from .options import BatchOptions, available_cores
from .outputs import OutputFolder, record_from_document
from .pools import InlinePool, Outcome, Pool, ProcessPool, Task
from .records import BatchPlan, BatchSummary, FileRecord
from .sources import Input, discover, input_key

#: ``(file id, result) -> {local label: global voice id or None}``; called by the driver, which owns the store.
Fingerprinter = Callable[[str, Result], Mapping[str, "str | None"]]
#: ``result -> {local label: enrolled name or None}``.
Identifier = Callable[[Result], Mapping[str, "str | None"]]

class _Stopped(Exception):
    pass


def run_batch(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: BatchOptions = BatchOptions(),
    *,
    fingerprint: Fingerprinter | None = None,
    identify: Identifier | None = None,
    on_start: Callable[[BatchPlan], None] | None = None,
    on_result: Callable[[FileRecord], None] | None = None,
    stop: threading.Event | None = None,
    pool: Pool | None = None,
) -> BatchSummary:
    """Diarize every input of ``source`` (a directory tree, a manifest file, or a list of paths) into ``out_dir``.

    Inputs done before with the same content and configuration are skipped; a file that fails is recorded
    and the run goes on. With ``options.fingerprint``/``options.identify`` the driver calls ``fingerprint``/
    ``identify`` per finished file, by default hooks over the voiceprint store it opens. Ctrl-C or ``stop``
    ends the run early: files in flight are dropped and ``interrupted`` is set. Raises :class:`BatchError`
    (or ``ConfigError``) when the job as a whole cannot run.

    ``pool`` runs the files on the caller's workers instead of a pool made from ``options.workers``/``ray``;
    the driver never closes it, so the caller cancels what it still holds (after a stop or an error).
    """
    started = time.monotonic()
    options.check()
    out_root = Path(out_dir)
    inputs = discover(source, options.pattern, out_root)
    summary = BatchSummary(files=len(inputs))
    with OutputFolder(out_root) as folder:
        job = _Job(folder, options, summary, on_result)
        try:
            job.find_pending(inputs)
            if job.pending:
                job.run(fingerprint, identify, on_start, stop, pool)
            elif on_start is not None:
                on_start(job.plan("none", 0, 0))
        except (KeyboardInterrupt, _Stopped):
            summary.interrupted = True
        finally:
            summary.wall_seconds = time.monotonic() - started
            job.finish()
    return summary


class _Job:
    def __init__(self, folder: OutputFolder, options: BatchOptions, summary: BatchSummary,
                 on_result: Callable[[FileRecord], None] | None) -> None:
        self.folder, self.options, self.summary, self.on_result = folder, options, summary, on_result
        self.config_hash = options.config_hash()
        self.records: dict[str, FileRecord] = {}
        self.pending: list[tuple[Input, str | None]] = []
        self.durations: list[float | None] = []
        self.planned = False

    def find_pending(self, inputs: list[Input]) -> None:
        """Sort inputs into done before (kept, marked skipped) and to do."""
        for inp in inputs:
            key = input_key(inp, self.options.content_key)
            before = self.folder.done_before(inp.rel, key, self.config_hash)
            if before is not None and (before.ok or not self.options.retry_failed):
                self.records[inp.rel] = dataclasses.replace(before, skipped=True)
            else:
                self.pending.append((inp, key))
        self.planned = True

    def plan(self, backend: str, workers: int, threads: int) -> BatchPlan:
        skipped = list(self.records.values())
        self.summary.backend, self.summary.workers, self.summary.threads = backend, workers, threads
        return BatchPlan(
            files=self.summary.files, pending=len(self.pending), skipped=len(skipped),
            failed_before=sum(not r.ok for r in skipped), pending_seconds=sum(d or 0.0 for d in self.durations),
            skipped_seconds=sum(r.duration or 0.0 for r in skipped if r.ok),
            backend=backend, workers=workers, threads=threads,
        )

    def run(self, fingerprint: Fingerprinter | None, identify: Identifier | None,
            on_start: Callable[[BatchPlan], None] | None, stop: threading.Event | None,
            given: Pool | None = None) -> None:
        options = self.options
        closers: list[Callable[[], None]] = []
        pool: Pool | None = None
        try:
            if (options.fingerprint and fingerprint is None) or (options.identify and identify is None):
                from .voices import open_voices

                found, named, close = open_voices(options)
                closers.append(close)
                fingerprint, identify = fingerprint or found, identify or named
            fingerprint = fingerprint if options.fingerprint else None
            identify = identify if options.identify else None
            if given is None:
                pool, backend, closer = _make_pool(options)
                if closer is not None:
                    closers.append(closer)
            workers: Pool = pool if given is None else given
            self.durations = [_header_seconds(inp.path) for inp, _ in self.pending]
            plan = self.plan(backend if given is None else "external", workers.slots, workers.threads)
            if on_start is not None:
                on_start(plan)
            self._drive(workers, fingerprint, identify, stop)
        except BaseException:
            if pool is not None:
                pool.close(cancel=True)
                pool = None
            raise
        finally:
            if pool is not None:
                pool.close()
            for close in reversed(closers):
                close()

    def _drive(self, pool: Pool, fingerprint: Fingerprinter | None, identify: Identifier | None,
               stop: threading.Event | None) -> None:
        ordered = fingerprint is not None or identify is not None
        lookahead = 4 * pool.slots + 4
        buffer: dict[int, Outcome] = {}
        submitted = committed = 0
        total = len(self.pending)
        while committed < total:
            if stop is not None and stop.is_set():
                raise _Stopped
            while submitted < total and pool.free() and (not ordered or submitted - committed < lookahead):
                pool.submit(Task(submitted, str(self.pending[submitted][0].path)))
                submitted += 1
            for outcome in pool.poll(0.2):
                buffer[outcome.index] = outcome
            if ordered:
                while committed in buffer:
                    self._commit(buffer.pop(committed), fingerprint, identify)
                    committed += 1
            else:
                for index in sorted(buffer):
                    self._commit(buffer.pop(index), None, None)
                    committed += 1

    def _commit(self, outcome: Outcome, fingerprint: Fingerprinter | None, identify: Identifier | None) -> None:
        inp, key = self.pending[outcome.index]
        payload = outcome.payload
        if "result" in payload:
            doc: dict[str, Any] = {"file": inp.rel, **payload["result"]}
            result = Result.from_dict(doc)
            voice_ids = _call(fingerprint, "fingerprinting", os.path.abspath(inp.path), result)
            names = _call(identify, "identification", result)
            for speaker in doc["speakers"]:
                if voice_ids is not None:
                    speaker["voice_id"] = voice_ids.get(speaker["speaker"])
                if names is not None:
                    speaker["name"] = names.get(speaker["speaker"])
            doc["batch"] = {"input_key": key, "config_hash": self.config_hash}
            self.folder.write_outputs(inp.rel, doc, result.to_rttm())
            record = record_from_document(inp.rel, doc, key, self.config_hash, payload.get("seconds"))
            self.summary.audio_seconds += record.duration or 0.0
        else:
            record = FileRecord(inp.rel, "failed", duration=self.durations[outcome.index], error=payload["error"],
                                input_key=key, config_hash=self.config_hash, seconds=payload.get("seconds"))
        self.folder.record(record)
        self.records[inp.rel] = record
        self.summary.processed += 1
        if self.on_result is not None:
            self.on_result(record)

    def finish(self) -> None:
        """Index, journal and summary from what is done, whether the run ended well or not."""
        records = list(self.records.values())
        s = self.summary
        s.ok = sum(r.ok for r in records)
        s.failed = sum(not r.ok for r in records)
        s.skipped = sum(r.skipped for r in records)
        s.failures = [(r.file, r.error or "") for r in sorted(records, key=lambda r: r.file) if not r.ok]
        if self.planned:  # else the index would lose the rows of inputs not looked at yet
            self.folder.write_index(records)
        self.folder.compact()
        self.folder.write_summary(s.to_dict())


def _call(hook: Callable[..., Mapping[str, Any]] | None, what: str, *args: Any) -> dict[str, Any] | None:
    if hook is None:
        return None
    try:
        return dict(hook(*args))
    except Exception as exc:
        raise BatchError(f"{what} failed, stopping (rerun to continue): {exc}") from exc


def _make_pool(options: BatchOptions) -> tuple[Pool, str, Callable[[], None] | None]:
    """The pool ``options`` ask for, its name, and what ends its cluster connection (if this call made it)."""
    cores = available_cores()
    if options.ray is not None:
        from .ray_pool import RayPool, cluster_cpus, connect

        ray, owned = connect(options.ray)
        try:
            cpus = cluster_cpus(ray)
            workers = options.workers or max(1, cpus // (options.threads or 1))
            pool: Pool = RayPool(ray, options, workers, options.threads or max(1, cpus // workers))
        except BaseException:
            if owned:
                ray.shutdown()
            raise
        return pool, "ray", ray.shutdown if owned else None
    workers = default_workers(cores) if options.workers is None else options.workers
    if workers == 0:
        return InlinePool(options, options.threads or cores), "inline", None
    return ProcessPool(options, workers, options.threads or max(1, cores // workers)), "local", None


def default_workers(cores: int) -> int:
    """Worker processes when none are asked for: one per core."""
    return max(1, cores)


def _header_seconds(path: Path) -> float | None:
    from ..audio import audio_info

    try:
        return audio_info(path).duration
    except Exception:
        return None
