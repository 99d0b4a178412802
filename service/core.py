"""The service's state and the operations routes call: one object per app, built at start-up."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import anyio

from diarize.audio import AudioInfo
from diarize.config import PipelineConfig
from diarize.errors import DiarizeError
from diarize.identity import identify
from diarize.result import Result
from diarize.speaker_count import speaker_bounds

from .auth import Authenticator
from .batch import DirectoryJobs
from .errors import ApiError, from_library
from .jobs import JobRecord, JobRunner, JobStore
from .keys import KeyFile
from .metrics import Metrics
from .models import DiarizeOptions, DiarizeResponse
from .pool import SYNC, PoolClosed, QueueFull, Task, TaskTimeout, WorkerCrashed, WorkerPool
from .settings import Settings
from .uploads import probe, remove
from .voice import VoiceService, with_enrolled

log = logging.getLogger("diarize.service")


def uri_of(filename: str | None) -> str:
    """A file id for RTTM from a client's file name."""
    stem = Path(filename or "").stem
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:100]
    return cleaned or "audio"


def scrub(error: ApiError, path: Path | str, name: str | None) -> ApiError:
    """The error with the server's file path replaced by the client's file name."""
    error.message = error.message.replace(os.fspath(path), name or "upload")
    return error


class Service:
    """Settings, worker pool, job store and runner, authenticator and metrics of one running app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.spool_dir = self.data_dir / "spool"
        self.metrics = Metrics()
        self.auth = Authenticator(KeyFile(settings.resolved_keys_file), settings.api_keys)
        pipeline = PipelineConfig.model_validate(settings.pipeline)
        audio = pipeline.audio.model_copy(update={"max_duration": settings.max_duration})
        self.pipeline_config = pipeline.model_copy(update={"audio": audio}).model_dump(mode="json")
        self.identification = pipeline.identification
        self.pool = WorkerPool(settings.workers, self.pipeline_config, settings.worker_threads,
                               settings.sync_queue_size, settings.job_share)
        self.voice = VoiceService(settings)
        self.pool.on_ready = self.voice.open
        self.store: JobStore | None = None
        self.runner: JobRunner | None = None
        self.batches = DirectoryJobs(self)
        self._probes: anyio.CapacityLimiter | None = None

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(exist_ok=True)
        for leftover in self.spool_dir.iterdir():  # uploads of requests a crash interrupted
            remove(leftover)
        self.store = JobStore(self.data_dir)
        referenced = self.store.referenced_audio()
        for path in self.store.audio_dir.iterdir():
            if str(path) not in referenced:
                remove(path)
        self.batches.start()
        self.runner = JobRunner(
            self.store, self.pool, concurrency=self.settings.running_jobs,
            max_attempts=self.settings.job_max_attempts, timeout=self.task_timeout, finish=self.finish_job,
            on_done=self._job_done, batch=self.batches.run, ready=self._jobs_may_start,
        )
        self._probes = anyio.CapacityLimiter(4)
        self.pool.start()
        self.runner.start()
        self.metrics.bind(self)

    def _jobs_may_start(self) -> bool:
        """Jobs wait until the voiceprint store has been opened (or failed to): a directory job resumed before
        would run without voice ids, under another configuration hash, redoing every file."""
        return self.voice.settled or self.pool.load_error is not None

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
        self.pool.close()
        self.voice.close()
        if self.store is not None:
            self.store.close()

    # ---------------------------------------------------------------- shared steps

    def task_timeout(self, duration: float | None) -> float:
        return self.settings.task_timeout_base + (duration if duration else self.settings.max_duration)

    async def probe(self, path: Path, options: DiarizeOptions, name: str | None = None) -> AudioInfo:
        """Header check in a thread: 413 over the duration limit, 4xx for unusable audio or hints."""
        try:
            info = await anyio.to_thread.run_sync(probe, path, limiter=self._probes)
        except ApiError as exc:
            raise scrub(exc, path, name) from None
        if info.duration > self.settings.max_duration:
            raise ApiError(413, "audio_too_long", f"{info.duration:.0f} s of audio exceeds the limit of "
                                                  f"{self.settings.max_duration:g} s")
        try:
            speaker_bounds(info.duration, **options.hints())
        except DiarizeError as exc:
            raise from_library(exc) from None
        named = max((int(c) for c in options.channel_roles or ()), default=0)
        if named > info.num_channels:
            raise ApiError(422, "invalid_options", f"channel_roles names channel {named} but the audio has "
                                                   f"{info.num_channels} channel(s)")
        return info

    def _busy(self, message: str) -> ApiError:
        self.metrics.rejected.inc()
        return ApiError(429, "queue_full", message, {"Retry-After": str(self.settings.retry_after)})

    # ---------------------------------------------------------------- synchronous diarization

    def _submit(self, task: Task) -> None:
        """Queue a synchronous task: 429 when the queue is full, 503 when no worker can load the models."""
        if self.pool.load_error and not self.pool.ready_workers:
            raise ApiError(503, "models_unavailable", f"the workers cannot load the models: {self.pool.load_error}",
                           {"Retry-After": "60"})
        try:
            self.pool.submit(task)
        except QueueFull as exc:
            raise self._busy(f"all workers are busy ({exc}); retry later") from None
        except PoolClosed:
            raise ApiError(503, "shutting_down", "the service is shutting down", {"Retry-After": "5"}) from None

    async def _outcome(self, task: Task, path: Path, filename: str | None) -> Any:
        """Wait for a submitted task; its failures become their API errors."""
        try:
            return await asyncio.wrap_future(task.future)
        except asyncio.CancelledError:
            self.pool.cancel(task)
            raise
        except DiarizeError as exc:
            raise scrub(from_library(exc), path, filename) from None
        except WorkerCrashed as exc:
            raise ApiError(422, "audio_crashed_worker", f"processing this audio crashed the worker: {exc}") from None
        except TaskTimeout as exc:
            raise ApiError(422, "processing_timeout", str(exc)) from None
        except PoolClosed:
            raise ApiError(503, "shutting_down", "the service is shutting down", {"Retry-After": "5"}) from None
        except RuntimeError as exc:
            log.error("worker failed on a synchronous request: %s", exc)
            raise ApiError(422, "processing_failed", "processing this audio failed inside the worker") from None

    def _task(self, kind: str, path: Path, duration: float, **payload: Any) -> Task:
        payload = {"path": os.fspath(path), "accept_truncated": self.settings.accept_truncated, **payload}
        return Task(kind, payload, priority=SYNC, retries=1, timeout=self.task_timeout(duration))

    async def diarize(self, tenant: str, path: Path, options: DiarizeOptions, info: AudioInfo,
                      filename: str | None) -> DiarizeResponse:
        """Diarize a spooled upload in a worker and wait for it (429 when every slot is taken)."""
        task = self._task("diarize", path, info.duration, uri=uri_of(filename), **options.task_options())
        self._submit(task)
        result = await self._outcome(task, path, filename)
        self.metrics.audio_seconds.labels("sync").inc(result["audio_duration"])
        return await anyio.to_thread.run_sync(self.respond, tenant, result, task.warnings, options, None)

    async def voice_samples(self, samples: list[tuple[Path, str | None, AudioInfo]]) -> list[Any]:
        """Quality-gate and embed enrollment samples in one worker task (one request, one queue slot)."""
        separation = await anyio.to_thread.run_sync(lambda: self.voice.calibration.separation)
        paths = [os.fspath(path) for path, _, _ in samples]
        names = [name or f"file {i + 1}" for i, (_, name, _) in enumerate(samples)]
        duration = sum(info.duration for _, _, info in samples)
        task = self._task("voice_samples", samples[0][0], duration, paths=paths, names=names, separation=separation)
        self._submit(task)
        return await self._outcome(task, samples[0][0], names[0])

    async def diarize_sample(self, path: Path, info: AudioInfo, filename: str | None) -> dict[str, Any]:
        """Diarize a short sample (identification) and return the library result with centroids."""
        task = self._task("diarize", path, info.duration, uri=uri_of(filename))
        self._submit(task)
        return await self._outcome(task, path, filename)

    def respond(self, tenant: str, result: dict[str, Any], warnings: list[str], options: DiarizeOptions,
                file_id: str | None) -> DiarizeResponse:
        """The API response for a library result: identities (voiceprint matches as evidence) and voice ids."""
        matches = self.voice.identify(tenant, result) if options.identify_enrolled else []
        request = options.identification_request()
        if request is not None:
            identified = identify(Result.from_dict(result), request, voiceprints=matches, config=self.identification)
            result = identified.to_dict(with_centroids=True)
        elif matches:
            result = with_enrolled(Result.from_dict(result), matches, self.identification).to_dict(with_centroids=True)
        if options.exclusive:
            result = Result.from_dict(result).exclusive().to_dict(with_centroids=True)
        response = DiarizeResponse.from_result(result, warnings, matches)
        return self.voice.annotate(tenant, result, response, file_id=file_id)

    # ---------------------------------------------------------------- jobs

    def create_job(self, tenant: str, *, source: str, audio_path: Path, filename: str | None, keep_audio: bool,
                   info: AudioInfo | None, options: DiarizeOptions, job_id: str,
                   batch: dict[str, Any] | None = None) -> JobRecord:
        if self.store.count_unfinished(tenant) >= self.settings.max_queued_jobs:
            raise self._busy(f"{self.settings.max_queued_jobs} jobs are already queued or running for this tenant")
        stored = {**options.stored(),
                  "hints": {**options.task_options(), "accept_truncated": self.settings.accept_truncated}}
        transcript = stored.pop("transcript", None)
        job = self.store.create(job_id, tenant, source=source, audio_path=os.fspath(audio_path), filename=filename,
                                keep_audio=keep_audio, audio_duration=info.duration if info else None, options=stored,
                                batch=batch, transcript=transcript)
        self.runner.wake()
        return job

    def job_options(self, job: JobRecord) -> DiarizeOptions:
        """The options a job runs with, its transcript read back from beside the record."""
        options = {k: v for k, v in job.options.items() if k != "hints"}
        transcript = self.store.transcript(job.id)
        if transcript is not None:
            options["transcript"] = transcript
        return DiarizeOptions.model_validate(options)

    def finish_job(self, job: JobRecord, result: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
        """The stored response of a finished job; a voiceprint store outage costs the voice fields, not the result."""
        self.metrics.audio_seconds.labels("job").inc(result["audio_duration"])
        result = {**result, "uri": uri_of(job.filename) if job.filename else job.id}  # as the route's RTTM
        options = self.job_options(job)
        try:
            response = self.respond(job.tenant, result, warnings, options, file_id=job.id)
        except ApiError as exc:
            without_store = options.model_copy(update={"identify_enrolled": False})
            response = self.respond(job.tenant, result, [*warnings, f"voiceprints skipped: {exc.message}"],
                                    without_store, file_id=None)
        return response.model_dump(mode="json")

    def _job_done(self, job: JobRecord, status: str) -> None:
        if job.source == "upload" and not job.keep_audio:
            remove(job.audio_path)

    def own_job(self, tenant: str, job_id: str) -> JobRecord:
        job = self.store.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        if job.tenant != tenant:
            raise ApiError(403, "forbidden", "this job belongs to another tenant")
        return job

    def _linked_voices(self, job: JobRecord) -> bool:
        """Whether the job's result was linked to voice ids (so the store holds observations of it)."""
        try:
            result = json.loads(self.store.result_path(job.id).read_text())
        except (OSError, ValueError):
            return self.settings.fingerprint
        return any(s.get("voice_id") for s in result.get("speakers", ()))

    def delete_job(self, job: JobRecord) -> None:
        """Cancel the job and delete its result, kept audio and voice observations."""
        if job.batch is not None:
            self.batches.delete(job)
            return
        with self.runner.outcome_lock:  # not while the job's outcome is being stored
            current = self.store.get(job.id) or job
            if current.status == "succeeded" and self._linked_voices(current):
                self.voice.call(lambda vp: vp.delete_file(job.tenant, job.id))
            self.store.delete(job.id)
        self.runner.cancel(job.id)
        if job.source == "upload":
            remove(job.audio_path)
