"""What a batch reports: one record per input file, the plan at the start and the summary at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

INDEX_FIELDS = ("file", "status", "duration", "speakers", "labels", "voice_ids", "names", "error")


@dataclass(frozen=True)
class FileRecord:
    """The outcome for one input. ``skipped``: done by an earlier run with the same input and configuration."""

    file: str
    status: Literal["ok", "failed"]
    duration: float | None = None
    speakers: int | None = None
    labels: tuple[str, ...] = ()
    voice_ids: tuple[str | None, ...] = ()
    names: tuple[str | None, ...] = ()
    error: str | None = None
    input_key: str | None = None
    config_hash: str = ""
    seconds: float | None = field(default=None, compare=False)
    skipped: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def index_row(self) -> dict[str, Any]:
        """The row of ``index.jsonl`` (deterministic: no timing)."""
        return {
            "file": self.file, "status": self.status,
            "duration": None if self.duration is None else round(self.duration, 3),
            "speakers": self.speakers, "labels": list(self.labels), "voice_ids": list(self.voice_ids),
            "names": list(self.names), "error": self.error,
        }

    def journal_entry(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("skipped")
        return row

    @classmethod
    def from_journal(cls, row: dict[str, Any]) -> "FileRecord":
        tuples = {k: tuple(row.get(k) or ()) for k in ("labels", "voice_ids", "names")}
        known = {k: row[k] for k in ("file", "status", "duration", "speakers", "error", "input_key", "config_hash",
                                     "seconds") if k in row}
        return cls(**known, **tuples)


@dataclass(frozen=True)
class BatchPlan:
    """The job as found at the start: how many inputs, how many already done, how much audio is done and to do."""

    files: int
    pending: int
    skipped: int
    failed_before: int
    pending_seconds: float
    backend: str
    workers: int
    threads: int
    skipped_seconds: float = 0.0


@dataclass
class BatchSummary:
    """The run in numbers; ``throughput`` is audio hours diarized per wall-clock hour (model loading included)."""

    files: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    processed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    backend: str = "local"
    workers: int = 1
    threads: int = 1
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def audio_hours(self) -> float:
        return self.audio_seconds / 3600

    @property
    def throughput(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failures"] = [{"file": f, "error": e} for f, e in self.failures]
        out.update(audio_hours=round(self.audio_hours, 4), throughput_audio_hours_per_hour=round(self.throughput, 1))
        return out
