"""The output folder: per-file JSON and RTTM mirroring the source, the journal, the index and the summary.

Every file is written to a temporary name beside its target, flushed to disk and renamed over it, so a
reader (or a rerun after kill -9) sees either the old file or the new one, never a torn one. The journal
is append-only, one JSON line per finished input; a torn last line is ignored. One run at a time holds
the folder's lock.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .errors import BatchError
from .records import INDEX_FIELDS, FileRecord

STATE_DIR = ".diarize-batch"
_TMP_SUFFIX = ".part"


def write_atomic(path: Path, text: str, only_if_changed: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsync, rename and fsync the folder: after a crash the
    file is whole or absent (with ``only_if_changed``, not written at all when it already holds ``text``)."""
    if only_if_changed:
        try:
            if path.read_text(encoding="utf-8") == text:
                return
        except (OSError, UnicodeDecodeError):
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def output_paths(root: Path, rel: str) -> tuple[Path, Path]:
    """JSON and RTTM of the input at ``rel``: the input's full name plus ``.json`` / ``.rttm``."""
    base = root / rel
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".rttm")


class OutputFolder:
    """The output folder of one job, locked for the duration of a ``with`` block."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.state = self.root / STATE_DIR
        self.journal_path = self.state / "journal.jsonl"
        self._lock_file: io.TextIOWrapper | None = None
        self._journal: io.TextIOWrapper | None = None
        self.previous: dict[str, FileRecord] = {}

    def __enter__(self) -> "OutputFolder":
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.state / "lock", "a")
        except OSError as exc:
            raise BatchError(f"{self.root}: cannot create the output folder: {exc.strerror}") from exc
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise BatchError(f"{self.root}: another batch run is writing to this folder") from None
        self.previous = read_journal(self.root)
        self._journal = open(self.journal_path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._journal is not None:
            self._journal.close()
        if self._lock_file is not None:
            self._lock_file.close()

    def done_before(self, rel: str, input_key: str | None, config_hash: str) -> FileRecord | None:
        """The earlier outcome for this input version and configuration, if its outputs are all there."""
        if input_key is None:
            return None
        record = self.previous.get(rel)
        if record is not None and record.input_key == input_key and record.config_hash == config_hash:
            if not record.ok or all(p.exists() for p in output_paths(self.root, rel)):
                return record
        return self._recover(rel, input_key, config_hash)

    def _recover(self, rel: str, input_key: str, config_hash: str) -> FileRecord | None:
        """Rebuild a lost journal entry from the JSON output itself."""
        json_path, rttm_path = output_paths(self.root, rel)
        if not rttm_path.exists():
            return None
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
            batch = doc["batch"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if batch.get("input_key") != input_key or batch.get("config_hash") != config_hash:
            return None
        record = self.previous[rel] = record_from_document(rel, doc, input_key, config_hash)
        return record

    def write_outputs(self, rel: str, document: dict[str, Any], rttm: str) -> None:
        json_path, rttm_path = output_paths(self.root, rel)
        write_atomic(json_path, json.dumps(document, indent=2) + "\n")
        write_atomic(rttm_path, rttm)

    def record(self, record: FileRecord) -> None:
        """Append the outcome to the journal, on disk before returning."""
        assert self._journal is not None
        self._journal.write(json.dumps(record.journal_entry()) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self.previous[record.file] = record

    def compact(self) -> None:
        """Rewrite the journal with the latest entry per file only."""
        assert self._journal is not None
        self._journal.close()
        text = "".join(json.dumps(r.journal_entry()) + "\n" for r in sorted(self.previous.values(),
                                                                            key=lambda r: r.file))
        write_atomic(self.journal_path, text, only_if_changed=True)
        self._journal = open(self.journal_path, "a", encoding="utf-8")

    def write_index(self, records: Iterable[FileRecord]) -> None:
        """``index.jsonl`` and ``index.csv``: one row per input of the job, sorted by file."""
        rows = [r.index_row() for r in sorted(records, key=lambda r: r.file)]
        write_atomic(self.root / "index.jsonl", "".join(json.dumps(row) + "\n" for row in rows), only_if_changed=True)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=INDEX_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join("" if v is None else v for v in row[k]) if isinstance(row[k], list)
                             else ("" if row[k] is None else row[k]) for k in INDEX_FIELDS})
        write_atomic(self.root / "index.csv", buffer.getvalue(), only_if_changed=True)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_atomic(self.root / "summary.json", json.dumps(summary, indent=2) + "\n")


def read_journal(root: str | os.PathLike[str]) -> dict[str, FileRecord]:
    """The latest journal entry per input of the output folder ``root`` (a line torn by a crash is skipped)."""
    records: dict[str, FileRecord] = {}
    try:
        lines = (Path(root) / STATE_DIR / "journal.jsonl").read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            record = FileRecord.from_journal(json.loads(line))
        except (ValueError, TypeError, KeyError):
            continue
        records[record.file] = record
    return records


def record_from_document(rel: str, doc: dict[str, Any], input_key: str | None, config_hash: str,
                         seconds: float | None = None) -> FileRecord:
    """The record of a successful file, from its JSON output."""
    speakers = doc.get("speakers", [])
    return FileRecord(
        file=rel, status="ok", duration=doc.get("audio_duration"), speakers=doc.get("num_speakers"),
        labels=tuple(s["speaker"] for s in speakers),
        voice_ids=tuple(s.get("voice_id") for s in speakers) if any("voice_id" in s for s in speakers) else (),
        names=tuple(s.get("name") for s in speakers) if any("name" in s for s in speakers) else (),
        input_key=input_key, config_hash=config_hash, seconds=seconds,
    )
