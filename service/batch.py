"""Directory jobs: a folder (or manifest) of the tenant's archive diarized by ``diarize.batch.run_batch``.

The batch driver runs in a thread of the service process and hands its files to the service's own worker
pool as JOB tasks (:class:`ServicePool`), so a directory job uses the same bounded CPU as other jobs. Its
outputs, resume journal, index and summary live under ``<data dir>/batches/<job id>/out``; the list of
files is fixed when the job is created (``inputs.json``), each checked to lie inside the archive root.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
import uuid
from urllib.parse import quote
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from diarize.audio import audio_info
from diarize.batch import BatchError, BatchOptions, BatchPlan, BatchSummary, FileRecord, run_batch
from diarize.batch.outputs import output_paths, read_journal, write_atomic
from diarize.batch.pools import Outcome
from diarize.batch.pools import Task as FileTask
from diarize.batch.sources import AUDIO_SUFFIXES, Input, discover
from diarize.batch.voices import VoiceprintHooks
from diarize.config import PipelineConfig
from diarize.result import Result

from .errors import ApiError
from .jobs import JobFailed, JobRecord
from .models import BatchFile, BatchFileResult, BatchResult, BatchRunSummary, DiarizeOptions
from .pool import JOB, PoolClosed, Task, TaskCancelled, TaskTimeout, WorkerCrashed, WorkerPool
from .uploads import archive_root, within

if TYPE_CHECKING:
    from .core import Service

log = logging.getLogger("diarize.service")


def is_listing(target: Path) -> bool:
    """Whether an archive path names a folder or a manifest (a file whose name is not an audio file's)."""
    return target.is_dir() or target.suffix.lower() not in AUDIO_SUFFIXES


class ServicePool:
    """The batch driver's pool on the service's :class:`WorkerPool`: JOB-priority tasks, ``slots`` files at once."""

    def __init__(self, pool: WorkerPool, slots: int, payload: dict[str, Any], names: dict[str, str],
                 timeout: Callable[[float | None], float]) -> None:
        self.pool, self.slots, self.threads = pool, slots, pool.threads
        self._payload, self._names, self._timeout = payload, names, timeout
        self._held: dict[int, Task] = {}
        self._finished: queue.SimpleQueue[tuple[int, Future]] = queue.SimpleQueue()

    def free(self) -> bool:
        return len(self._held) < self.slots

    def submit(self, task: FileTask) -> None:
        """Queue one file; raises PoolClosed when the service is shutting down (the job is requeued)."""
        payload = {**self._payload, "path": task.path, "name": self._names.get(task.path, "audio")}
        work = Task("batch_file", payload, priority=JOB, timeout=self._timeout(_seconds(task.path)))
        self.pool.submit(work)
        self._held[task.index] = work
        work.future.add_done_callback(lambda future, index=task.index: self._finished.put((index, future)))

    def poll(self, timeout: float) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            index, future = self._finished.get(timeout=timeout)
            while True:
                if self._held.pop(index, None) is not None:
                    outcomes.append(Outcome(index, self._outcome(future)))
                index, future = self._finished.get_nowait()
        except queue.Empty:
            return outcomes

    def _outcome(self, future: Future) -> dict[str, Any]:
        """The batch worker's payload, or the file's failure; the service shutting down is not the file's fault."""
        exc = future.exception()
        if exc is None:
            return future.result()
        if isinstance(exc, PoolClosed) or (self.pool.closing and isinstance(exc, (WorkerCrashed, TaskCancelled))):
            raise PoolClosed("the service is shutting down")
        if isinstance(exc, WorkerCrashed):
            return {"error": "the worker process died on this file"}
        if isinstance(exc, TaskTimeout):
            return {"error": f"the worker was stopped: {exc}"}
        if isinstance(exc, TaskCancelled):
            return {"error": "cancelled"}
        log.error("batch file failed in the worker: %s", exc)
        return {"error": "processing failed inside the worker"}

    def close(self, cancel: bool = False) -> None:
        """Cancel the files still held (queued ones are dropped, running ones' workers replaced)."""
        held, self._held = list(self._held.values()), {}
        for work in held:
            self.pool.cancel(work)


def _seconds(path: str) -> float | None:
    try:
        return audio_info(path).duration
    except Exception:
        return None


class DirectoryJobs:
    """Creates, runs, reports and deletes the directory jobs of one service."""

    def __init__(self, service: "Service") -> None:
        self.svc = service
        self.root = service.data_dir / "batches"

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def out_dir(self, job_id: str) -> Path:
        return self.folder(job_id) / "out"

    def start(self) -> None:
        """Remove the folders of jobs deleted while the service was down."""
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in self.root.iterdir():
            if self.svc.store.get(folder.name) is None:
                shutil.rmtree(folder, ignore_errors=True)

    # ---------------------------------------------------------------- creation

    def find(self, tenant: str, requested: str, target: Path, pattern: str | None) -> list[dict[str, str]]:
        """The job's files (``file``: its name in the job, ``path``: below the archive root), or 4xx.

        Files of a folder are named relative to it, a manifest's relative to the archive root; every
        file must resolve inside the archive root (a link leading out refuses the job).
        """
        root = archive_root(self.svc.settings.archive_root, tenant)
        try:
            found = discover(target, pattern)
        except BatchError as exc:
            raise ApiError(422, "invalid_manifest", str(exc).replace(os.fspath(target), requested)) from None
        files: dict[str, str] = {}
        for inp in found:
            real = inp.path.resolve()
            if not within(root, real) or real == root:
                shown = _shown(inp, target, root)
                raise ApiError(403, "path_outside_archive", f"{shown} leads outside the archive root")
            name = inp.rel if target.is_dir() else _below(root, inp.path) or real.relative_to(root).as_posix()
            files.setdefault(name, real.relative_to(root).as_posix())
        if not files:
            what = f"matching {pattern!r}" if pattern else "with an audio file name"
            raise ApiError(422, "no_audio_files", f"{requested} lists no files {what}")
        return [{"file": name, "path": path} for name, path in sorted(files.items())]

    def create(self, tenant: str, requested: str, target: Path, pattern: str | None,
               options: DiarizeOptions) -> JobRecord:
        """Find the files, fix the list on disk, then queue the job (202)."""
        per_file = [name for name in ("speaker_identification", "channel_roles", "transcript")
                    if getattr(options, name)]
        if per_file:
            raise ApiError(422, "not_available", f"{', '.join(per_file)} is for one file: a directory job does not "
                                                 "take it (identify_enrolled names enrolled voices in every file)")
        files = self.find(tenant, requested, target, pattern)
        job_id = uuid.uuid4().hex
        write_atomic(self.folder(job_id) / "inputs.json", json.dumps(files))
        batch = {"pattern": pattern, "files": len(files), "done": 0, "failed": 0, "audio_seconds": 0.0}
        try:
            return self.svc.create_job(tenant, source="archive", audio_path=target, filename=requested,
                                       keep_audio=True, info=None, options=options, job_id=job_id, batch=batch)
        except BaseException:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
            raise

    def files(self, job_id: str) -> list[dict[str, str]]:
        try:
            return json.loads((self.folder(job_id) / "inputs.json").read_text())
        except (OSError, ValueError):
            return []

    # ---------------------------------------------------------------- running

    def options(self, job: JobRecord, fingerprint: bool, identify: bool) -> BatchOptions:
        hints = job.options.get("hints", {})
        return BatchOptions(
            pipeline=PipelineConfig.model_validate(self.svc.pipeline_config),
            num_speakers=hints.get("num_speakers"), min_speakers=hints.get("min_speakers"),
            max_speakers=hints.get("max_speakers"), multichannel=bool(job.options.get("multichannel")),
            fingerprint=fingerprint, identify=identify, tenant=job.tenant,
        )

    def run(self, job: JobRecord, stop: threading.Event) -> dict[str, Any] | None:
        """Run (or resume) the job on the service's workers; its response, or None when ``stop`` ended it."""
        try:
            root = archive_root(self.svc.settings.archive_root, job.tenant)
        except ApiError as exc:
            raise JobFailed(exc.code, exc.message) from None
        listed = self.files(job.id)
        if not listed:
            raise JobFailed("inputs_missing", "the list of this job's files is gone from the server")
        inputs = []
        for entry in listed:
            real = (root / entry["path"]).resolve()
            if not within(root, real):
                raise JobFailed("path_outside_archive", f"{entry['file']} now leads outside the archive root")
            inputs.append(Input(real, entry["file"]))
        names = {os.fspath(i.path): i.rel for i in inputs}
        warnings: list[str] = []
        fingerprint, identify = self._hooks(job, names, warnings)
        options = self.options(job, fingerprint is not None, identify is not None)
        payload = {"options": options.model_dump_json(), "accept_truncated": self.svc.settings.accept_truncated}
        pool = ServicePool(self.svc.pool, max(1, self.svc.settings.running_jobs), payload, names,
                           self.svc.task_timeout)
        progress = dict(job.batch or {}, files=len(inputs))

        def on_start(plan: BatchPlan) -> None:
            progress.update(done=plan.skipped, failed=plan.failed_before, audio_seconds=round(plan.skipped_seconds, 3))
            self.svc.store.batch_progress(job.id, progress)

        def on_result(record: FileRecord) -> None:
            progress["done"] += 1
            progress["failed"] += not record.ok
            if record.ok and record.duration:
                progress["audio_seconds"] = round(progress["audio_seconds"] + record.duration, 3)
                self.svc.metrics.audio_seconds.labels("job").inc(record.duration)
            self.svc.store.batch_progress(job.id, progress)
            if self.svc.store.get(job.id) is None:  # deleted meanwhile
                stop.set()

        out = self.out_dir(job.id)
        try:
            summary = run_batch(inputs, out, options, fingerprint=fingerprint, identify=identify,
                                on_start=on_start, on_result=on_result, stop=stop, pool=pool)
        except BatchError as exc:
            raise JobFailed("batch_failed", str(exc).replace(os.fspath(out), "the job's output folder")) from None
        finally:
            pool.close(cancel=True)
            if self.svc.store.get(job.id) is None:
                self.purge(job, listed)
        if summary.interrupted:
            return None
        return self.response(job, summary, warnings)

    def _hooks(self, job: JobRecord, names: dict[str, str],
               warnings: list[str]) -> tuple[Callable[[str, Result], Any] | None, Callable[[Result], Any] | None]:
        """Voice id and enrolled-name hooks bound to the job's tenant, over the service's store (its lock held)."""
        voice, tenant = self.svc.voice, job.tenant
        wanted = self.svc.settings.fingerprint or bool(job.options.get("identify_enrolled"))
        if not wanted:
            return None, None
        try:
            voice.call(lambda vp: None)
        except ApiError as exc:
            warnings.append(f"voiceprints skipped: {exc.message}")
            return None, None

        def fingerprint(path: str, result: Result) -> Any:
            file_id = f"{job.id}/{names[path]}"
            return voice.call(lambda vp: VoiceprintHooks(vp, tenant).fingerprint(file_id, result))

        def identify(result: Result) -> Any:
            return voice.call(lambda vp: VoiceprintHooks(vp, tenant).identify(result))

        return (fingerprint if self.svc.settings.fingerprint else None,
                identify if job.options.get("identify_enrolled") else None)

    def response(self, job: JobRecord, summary: BatchSummary, warnings: list[str]) -> dict[str, Any]:
        """The stored result: the run's summary and every file's record, from the batch index."""
        rows = [json.loads(line) for line in (self.out_dir(job.id) / "index.jsonl").read_text().splitlines()]
        files = [BatchFile(**row, result_url=f"/v1/jobs/{job.id}/files/{quote(row['file'])}" if row["status"] == "ok"
                           else None) for row in rows]
        done = summary.to_dict()
        result = BatchResult(
            summary=BatchRunSummary(**{k: done[k] for k in BatchRunSummary.model_fields}),
            audio_duration=round(sum(f.duration or 0.0 for f in files if f.status == "ok"), 3),
            files=files, warnings=warnings,
        )
        return result.model_dump(mode="json")

    # ---------------------------------------------------------------- reading and deleting

    def file_result(self, job: JobRecord, name: str, output_format: str) -> BatchFileResult | str:
        """One file's full result (or its RTTM text); 404 for a file not in the job, 409 until it is done."""
        if name not in {entry["file"] for entry in self.files(job.id)}:
            raise ApiError(404, "not_found", f"no file {name} in job {job.id}")
        json_path, rttm_path = output_paths(self.out_dir(job.id), name)
        try:
            if output_format == "rttm":
                return rttm_path.read_text()
            return BatchFileResult.model_validate_json(json_path.read_text())
        except FileNotFoundError:
            pass
        record = read_journal(self.out_dir(job.id)).get(name)
        if record is not None and not record.ok:
            raise ApiError(409, "file_failed", f"{name} failed: {record.error}")
        raise ApiError(409, "file_not_finished", f"{name} is not diarized yet (the job is {job.status}); retry later")

    def delete(self, job: JobRecord) -> None:
        """Stop the job (waiting for its driver), then delete it, its voice observations and its outputs."""
        if self._linked(job):
            self.svc.voice.call(lambda vp: None)  # 503 now, before anything is deleted, if the store is down
        self.svc.store.delete(job.id)
        self.svc.runner.cancel(job.id)
        self.purge(job)

    def _linked(self, job: JobRecord) -> bool:
        """Whether the store may hold observations of the job's files: the journal lists voice ids, or the store
        is open and fingerprints jobs (an earlier run of a resumed job may have linked files its journal no
        longer shows as linked)."""
        journal = read_journal(self.out_dir(job.id))
        return any(any(r.voice_ids) for r in journal.values()) or (
            self.svc.settings.fingerprint and self.svc.voice.voiceprints is not None)

    def purge(self, job: JobRecord, listed: list[dict[str, str]] | None = None) -> None:
        """Delete the job's voice observations (one file id per file: ``<job id>/<file>``) and its outputs."""
        listed = self.files(job.id) if listed is None else listed
        if self._linked(job):
            for entry in listed:
                file_id = f"{job.id}/{entry['file']}"
                self.svc.voice.call(lambda vp: vp.delete_file(job.tenant, file_id))
        shutil.rmtree(self.folder(job.id), ignore_errors=True)


def _below(root: Path, path: Path) -> str | None:
    """``path`` (normalised, links not followed) relative to ``root``, when it is lexically below it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _shown(inp: Input, target: Path, root: Path) -> str:
    """How a refused input is named to the client: never by a server path outside the archive."""
    return inp.rel if target.is_dir() else (_below(root, inp.path) or "a listed file")
