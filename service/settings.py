"""Service settings: ``DIARIZE_*`` environment variables over an optional TOML settings file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "diarize"


class Settings(BaseSettings):
    """Everything the service reads at start; each field is also ``DIARIZE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DIARIZE_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir, description="Jobs database, results, spool, voiceprints.")
    keys_file: Path | None = Field(None, description="Hashed API keys (default: <data_dir>/keys.json).")
    api_keys: str | None = Field(None, description="Development keys as 'tenant:key,tenant2:key2'.")
    qdrant_url: str | None = Field(None, description="Qdrant server for voiceprints (default: embedded store).")
    qdrant_api_key: str | None = None
    archive_root: str | None = Field(None, description="Jobs may name files under this folder; '{tenant}' is replaced.")

    workers: int = Field(default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)), ge=1, le=64)
    worker_threads: int = Field(1, ge=1, le=64, description="Torch threads in each worker process.")
    queue_size: int | None = Field(None, ge=0, description="Synchronous requests waiting (default 2 x workers).")
    job_concurrency: int | None = Field(None, ge=1, description="Jobs running at once (default workers - 1, min 1).")
    max_queued_jobs: int = Field(100, ge=1, description="Unfinished jobs per tenant before 429.")
    job_max_attempts: int = Field(2, ge=1, le=10, description="Runs of a job whose worker crashed before it is failed.")
    job_share: float = Field(0.25, ge=0, le=1, description="Share of free workers that go to queued jobs while "
                                                           "synchronous requests also wait (0: strict priority).")

    max_upload_mb: float = Field(512.0, gt=0)
    max_duration: float = Field(4 * 3600.0, gt=0, description="Longest audio accepted (s), else 413.")
    accept_truncated: bool = Field(False, description="Diarize what a truncated file holds (with a warning), not 422.")
    sync_max_duration: float = Field(600.0, ge=0, description="Longer audio posted to /v1/diarize becomes a job (202).")
    task_timeout_base: float = Field(300.0, gt=0, description="A task may run this long (s) plus its audio's duration.")
    retry_after: int = Field(5, ge=1, description="Seconds suggested in Retry-After when the queue is full.")
    voiceprint_calibration: Path | None = Field(
        None, description="JSON thresholds (identify, link, ...) for a model that has no measured calibration.")
    fingerprint: bool = Field(True, description="Link the speakers of every job to persistent voice ids.")
    pipeline: dict[str, Any] = Field(default_factory=dict, description="PipelineConfig overrides (settings file).")

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.sync_max_duration > self.max_duration:
            raise ValueError("sync_max_duration cannot exceed max_duration")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("DIARIZE_SETTINGS")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def sync_queue_size(self) -> int:
        return 2 * self.workers if self.queue_size is None else self.queue_size

    @property
    def running_jobs(self) -> int:
        return self.job_concurrency or max(1, self.workers - 1)

    @property
    def resolved_keys_file(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"
