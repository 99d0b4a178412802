"""What to diarize: a directory tree walked for audio files, or a manifest file listing paths."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from .errors import BatchError

#: File name endings taken as audio when no pattern is given.
AUDIO_SUFFIXES = frozenset(
    ".wav .flac .mp3 .ogg .oga .opus .m4a .mp4 .aac .webm .wma .aif .aiff .caf .amr .mka .au .snd .w64 .sph".split()
)


@dataclass(frozen=True)
class Input:
    """One file of the job: where it is, and ``rel``, its place in the mirrored output layout (POSIX)."""

    path: Path
    rel: str


def discover(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str] | Input], pattern: str | None = None,
             exclude: Path | None = None) -> list[Input]:
    """The inputs of ``source`` sorted by ``rel``: a directory tree, a manifest file, a list of paths, or a list of
    :class:`Input` a caller has already found and checked (taken as they are).

    A manifest has one path per line (blank lines and ``#`` comments skipped), relative to the manifest's
    directory. Paths outside that directory (or a list's paths outside the current one) are mirrored under
    their absolute path. Listed paths are kept even when missing: they fail in the run, with the reason.
    """
    if isinstance(source, (list, tuple)):
        if source and all(isinstance(p, Input) for p in source):
            return sorted({p.rel: p for p in source}.values(), key=lambda i: i.rel)
        return _listed([Path(p) for p in source], Path.cwd(), pattern)
    root = Path(source)
    if root.is_dir():
        return _walk(root, pattern, exclude)
    if root.is_file():
        if root.suffix.lower() in AUDIO_SUFFIXES:
            return [Input(root, root.name)]
        return _listed(_read_manifest(root), root.parent, pattern)
    raise BatchError(f"{root}: no such directory or manifest file")


def input_key(inp: Input, content_key: str = "stat") -> str | None:
    """What identifies this version of the input (size+mtime or SHA-256); None when it cannot be read."""
    try:
        if content_key == "sha256":
            h = hashlib.sha256()
            with open(inp.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return f"sha256:{h.hexdigest()}"
        st = inp.path.stat()
        return f"stat:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return None


def _matches(rel: str, pattern: str | None) -> bool:
    if pattern is None:
        return PurePosixPath(rel).suffix.lower() in AUDIO_SUFFIXES
    return fnmatch.fnmatch(rel if "/" in pattern else PurePosixPath(rel).name, pattern)


def _walk(root: Path, pattern: str | None, exclude: Path | None) -> list[Input]:
    skip = exclude.resolve() if exclude is not None else None
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if skip is None or (here / d).resolve() != skip)
        for name in files:
            rel = (here / name).relative_to(root).as_posix()
            if _matches(rel, pattern):
                found.append(Input(here / name, rel))
    return sorted(found, key=lambda i: i.rel)


def _read_manifest(path: Path) -> list[Path]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"{path}: cannot read the manifest: {exc}") from exc
    lines = (line.strip() for line in text.splitlines())
    return [Path(line) for line in lines if line and not line.startswith("#")]


def _listed(paths: list[Path], base: Path, pattern: str | None) -> list[Input]:
    base = base.absolute()
    found: dict[str, Input] = {}
    for p in paths:
        path = Path(os.path.normpath(base / p))
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            rel = path.as_posix().lstrip("/")
        if pattern is None or _matches(rel, pattern):
            found.setdefault(rel, Input(path, rel))
    return sorted(found.values(), key=lambda i: i.rel)
