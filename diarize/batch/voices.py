"""The driver's side of voiceprints: it alone opens the store and records each finished file.

Workers never touch the store (the embedded one is locked by one process): they return results with
speaker centroids, and the hooks built here give global voice ids and enrolled names per local label.
"""

from __future__ import annotations

from typing import Callable, Mapping

from ..result import Result
from .errors import BatchError
from .options import BatchOptions

VoiceIds = Mapping[str, "str | None"]


def open_voices(options: BatchOptions) -> tuple[Callable[[str, Result], VoiceIds], Callable[[Result], VoiceIds],
                                                Callable[[], None]]:
    """Fingerprint and identify hooks over the store ``options`` name, and the function that closes it."""
    try:
        from ..embeddings import load_backend
        from ..voiceprints import Voiceprints, open_store
    except ImportError as exc:
        raise BatchError(f"--fingerprint/--identify need the voiceprint store, which cannot load here: {exc}") from exc
    try:
        backend = load_backend(options.pipeline.embedding)
        store = open_store(options.store)
    except Exception as exc:
        raise BatchError(f"cannot open the voiceprint store: {exc}") from exc
    try:
        voiceprints = Voiceprints(store, backend)
    except BaseException:
        store.close()
        raise
    hooks = VoiceprintHooks(voiceprints, options.tenant)
    return hooks.fingerprint, hooks.identify, voiceprints.close


class VoiceprintHooks:
    """Adapts :class:`~diarize.voiceprints.Voiceprints` to the driver's hooks."""

    def __init__(self, voiceprints, tenant: str) -> None:
        self.voiceprints, self.tenant = voiceprints, tenant

    def fingerprint(self, file_id: str, result: Result) -> dict[str, str | None]:
        """Record the file's speakers; a file recorded before keeps its voice ids."""
        return {link.label: link.voice_id for link in self.voiceprints.observe(self.tenant, file_id, result)}

    def identify(self, result: Result) -> dict[str, str | None]:
        return {match.label: match.name for match in self.voiceprints.identify(self.tenant, result)}
