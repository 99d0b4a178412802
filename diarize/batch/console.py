"""``diarize batch`` on a terminal: a progress bar (or log lines), the summary, and the exit status."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from ..errors import DiarizeError
from .driver import run_batch
from .options import BatchOptions
from .records import BatchPlan, BatchSummary, FileRecord

#: Exit statuses: every file diarized / some files failed / the batch could not run / interrupted.
EXIT_OK, EXIT_FAILED_FILES, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def default_out_dir(src: Path) -> Path:
    """``SRC-diarized`` beside SRC (a manifest ``calls.txt`` gives ``calls-diarized``)."""
    src = src.absolute()
    name = src.stem if src.is_file() else src.name
    return src.parent / f"{name or 'batch'}-diarized"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Reporter:
    """Shows the run: a Rich bar on a terminal, else one line per file; ``quiet`` keeps only failures."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet = console, quiet
        self.bar_mode = console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.done = self.failed = 0
        self.audio = 0.0
        self.total_seconds = 0.0
        self.pending = 0
        self.started = time.monotonic()

    def start(self, plan: BatchPlan) -> None:
        self.pending, self.total_seconds, self.started = plan.pending, plan.pending_seconds, time.monotonic()
        if not self.quiet:
            where = {"local": f"{plan.workers} worker process(es)", "ray": f"{plan.workers} Ray worker(s)",
                     "inline": "this process", "none": "nothing to do"}[plan.backend]
            self.console.print(
                f"{plan.files} files: {plan.pending} to diarize ({plan.pending_seconds / 3600:.2f} h of audio), "
                f"{plan.skipped} done before ({plan.failed_before} failed); {where}"
                + (f", {plan.threads} thread(s) each" if plan.backend in ("local", "ray") else ""),
                highlight=False, soft_wrap=True)
        if self.bar_mode and plan.pending:
            self.progress = Progress(
                BarColumn(), TextColumn("{task.fields[files]}"), TextColumn("{task.fields[hours]}"),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"), TextColumn("{task.fields[bad]}"),
                console=self.console, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("batch", total=max(plan.pending_seconds, 1e-9), **self._fields())

    def _fields(self) -> dict[str, str]:
        elapsed = time.monotonic() - self.started
        rate = self.audio / elapsed if elapsed > 0 else 0.0
        left = max(self.total_seconds - self.audio, 0.0)
        eta = _clock(left / rate) if rate > 0 else "--:--:--"
        return {
            "files": f"{self.done}/{self.pending} files",
            "hours": f"{self.audio / 3600:.2f}/{self.total_seconds / 3600:.2f} h audio",
            "rate": f"{rate:.0f} audio-h/h", "eta": f"ETA {eta}",
            "bad": f"[red]{self.failed} failed[/red]" if self.failed else "",
        }

    def result(self, record: FileRecord) -> None:
        self.done += 1
        self.failed += not record.ok
        self.audio += record.duration or 0.0
        if not record.ok:
            line = f"[red]failed[/red] {record.file}: {record.error}"
        elif self.quiet:
            line = ""
        else:
            line = (f"ok {record.file}: {record.duration or 0:.1f} s audio, {record.speakers} speaker(s) "
                    f"in {record.seconds or 0:.1f} s")
        if self.progress is not None:
            if not record.ok:
                self.progress.console.print(line, highlight=False, soft_wrap=True)
            self.progress.update(self.task, completed=self.audio, **self._fields())
        elif line:
            self.console.print(f"[{self.done}/{self.pending}] {line}", highlight=False, soft_wrap=True)

    def finish(self, summary: BatchSummary, out_dir: Path) -> None:
        if self.progress is not None:
            self.progress.stop()
        s = summary
        head = "interrupted: " if s.interrupted else ""
        self.console.print(
            f"{head}{s.files} files: {s.ok} ok, {s.failed} failed, {s.skipped} done before; diarized "
            f"{s.processed} files, {s.audio_hours:.2f} h of audio in {_clock(s.wall_seconds)} "
            f"({s.throughput:.0f} audio-h/h). Index: {out_dir / 'index.jsonl'}", highlight=False, soft_wrap=True)
        if s.interrupted:
            self.console.print("rerun the same command to continue where it stopped", highlight=False, soft_wrap=True)


def batch_main(src: Path, out_dir: Path | None, options: BatchOptions, quiet: bool) -> int:
    """Run the batch for the CLI; returns the exit status."""
    console = Console(stderr=True)
    out = out_dir or default_out_dir(src)
    reporter = Reporter(console, quiet)
    try:
        summary = run_batch(src, out, options, on_start=reporter.start, on_result=reporter.result)
    except (DiarizeError, ValueError) as exc:
        if reporter.progress is not None:
            reporter.progress.stop()
        console.print(f"[red]error:[/red] {' '.join(str(exc).split())}", highlight=False, soft_wrap=True)
        return EXIT_ERROR
    reporter.finish(summary, out)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED_FILES if summary.failed else EXIT_OK
