"""The one configuration object of a batch run: the pipeline's config plus how to run the archive."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import PipelineConfig
from ..speaker_count import speaker_bounds

#: Bump when the per-file output changes shape: every file is then redone.
OUTPUT_VERSION = 2


class BatchOptions(BaseModel):
    """How to diarize an archive. Fields that change the outputs are part of :meth:`config_hash`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: PipelineConfig = PipelineConfig()
    num_speakers: int | None = Field(None, ge=1)
    min_speakers: int | None = Field(None, ge=1)
    max_speakers: int | None = Field(None, ge=1)
    multichannel: bool = Field(False, description="Diarize each channel on its own (speakers 1A, 2A, ...).")
    pattern: str | None = Field(None, description="Glob on file names (or relative paths if it has a '/').")
    workers: int | None = Field(None, ge=0, description="Processes (Ray actors); 0 runs in this process.")
    threads: int | None = Field(None, ge=1, description="Torch threads per worker; default cores // workers.")
    fingerprint: bool = Field(False, description="Give every speaker a global voice id across files.")
    identify: bool = Field(False, description="Name speakers whose voice is enrolled.")
    store: str | None = Field(None, description="Voiceprint store directory (default: the user's data dir).")
    tenant: str = "default"
    ray: str | None = Field(None, description="Ray address: 'auto', 'local' or host:port; None for the local pool.")
    content_key: Literal["stat", "sha256"] = Field("stat", description="Input identity: size+mtime, or a hash.")
    retry_failed: bool = Field(False, description="Try again inputs that failed in an earlier run.")
    include_config: bool = Field(False, description="Add the pipeline's configuration to each file's JSON.")

    def check(self) -> None:
        """Raise ConfigError for hints no file could satisfy."""
        speaker_bounds(60.0, self.num_speakers, self.min_speakers, self.max_speakers)

    @property
    def hints(self) -> dict[str, int | None]:
        return {"num_speakers": self.num_speakers, "min_speakers": self.min_speakers, "max_speakers": self.max_speakers}

    def config_hash(self) -> str:
        """Identity of everything that shapes an output file; a rerun redoes files written under another."""
        voices = self.fingerprint or self.identify
        fields: dict[str, Any] = {
            "output_version": OUTPUT_VERSION,
            "diarize": _version(),
            "pipeline": self._shaping_pipeline().model_dump(mode="json"),
            "hints": self.hints,
            "multichannel": self.multichannel,
            "fingerprint": self.fingerprint,
            "identify": self.identify,
            "include_config": self.include_config,
            "voices": {"store": self.store, "tenant": self.tenant} if voices else None,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def _shaping_pipeline(self) -> PipelineConfig:
        """The pipeline config without the duration cap: it refuses files but never changes an output."""
        audio = self.pipeline.audio.model_copy(update={"max_duration": None})
        return self.pipeline.model_copy(update={"audio": audio})


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _version() -> str:
    try:
        return metadata.version("diarize")
    except metadata.PackageNotFoundError:
        return "unknown"
