"""Voiceprints in the service process: the one owner of the store (workers only embed and hand vectors back)."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, TypeVar

from diarize.config import IdentificationConfig
from diarize.errors import DiarizeError, StoreError
from diarize.identity import VoiceprintEvidence
from diarize.identity.assign import voiceprint_cues
from diarize.result import Evidence, Identity, Result

from .errors import ApiError
from .models import DiarizeResponse
from .settings import Settings

log = logging.getLogger("diarize.service")
T = TypeVar("T")
REOPEN_AFTER = 10.0  # seconds between attempts to open a store that failed to open


class VoiceService:
    """Opens the voiceprint store once the workers report their model; serialises every store call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.voiceprints: Any = None
        self.error: str | None = None
        self._model: tuple[str, int] | None = None
        self._tried = 0.0
        self._lock = threading.RLock()

    def open(self, model_id: str, dimension: int) -> None:
        """Called once a worker has loaded its model: the store's collection follows that model."""
        with self._lock:
            self._model, self._tried = (model_id, dimension), time.monotonic()
            if self.voiceprints is not None:
                return
            try:
                from diarize.voiceprints import Voiceprints, open_store

                calibration = self._calibration(model_id)
                store = open_store(self.settings.data_dir, url=self.settings.qdrant_url,
                                   api_key=self.settings.qdrant_api_key)
                try:
                    self.voiceprints = Voiceprints(store, SimpleNamespace(model_id=model_id, dimension=dimension),
                                                   calibration=calibration)
                except BaseException:
                    store.close()
                    raise
                self.error = None
            except (DiarizeError, ImportError, OSError, ValueError, TypeError) as exc:
                self.error = f"voiceprint store unavailable: {exc}"
                log.error(self.error)

    def _calibration(self, model_id: str) -> Any:
        """The settings' calibration file if given, else the library's measured one for ``model_id``."""
        from diarize.voiceprints import Calibration, load_calibration

        path = self.settings.voiceprint_calibration
        if path is None:
            return load_calibration(model_id)
        entry = json.loads(Path(path).read_text())
        fields = {k: entry[k] for k in Calibration.__dataclass_fields__ if k != "model_id"}
        return Calibration(model_id=model_id, **fields)

    @property
    def settled(self) -> bool:
        """Whether opening the store has been tried (it opens once a worker has loaded its model)."""
        return self._model is not None

    def close(self) -> None:
        with self._lock:
            if self.voiceprints is not None:
                self.voiceprints.close()
                self.voiceprints = None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(voiceprints, ...)`` under the store lock; 503 while the store is not open."""
        with self._lock:
            if self.voiceprints is None and self._model and time.monotonic() - self._tried > REOPEN_AFTER:
                self.open(*self._model)  # e.g. a Qdrant server that was down when the service started
            if self.voiceprints is None:
                raise ApiError(503, "store_unavailable", self.error or "the voiceprint store is still opening",
                               {"Retry-After": "5"})
            try:
                return fn(self.voiceprints, *args, **kwargs)
            except StoreError as exc:
                raise ApiError(503, "store_unavailable", str(exc), {"Retry-After": "5"}) from None

    @property
    def calibration(self) -> Any:
        return self.call(lambda vp: vp.calibration)

    def identify(self, tenant: str, result: dict[str, Any]) -> list[Any]:
        """The tenant's enrolled speakers matched to a result's speakers (``SpeakerMatch`` each, one-to-one)."""
        library_result = Result.from_dict(result)
        return self.call(lambda vp: vp.identify(tenant, library_result))

    def annotate(self, tenant: str, result: dict[str, Any], response: DiarizeResponse, *,
                 file_id: str | None) -> DiarizeResponse:
        """Attach persistent voice ids to a response (when ``file_id`` and fingerprinting is on)."""
        if file_id is None or not self.settings.fingerprint:
            return response
        library_result = Result.from_dict(result)
        links = self.call(lambda vp: vp.observe(tenant, file_id, library_result))
        voice_ids = {link.label: link.voice_id for link in links}
        for speaker in response.speakers:
            speaker.voice_id = voice_ids.get(speaker.speaker)
        return response


def with_enrolled(result: Result, matches: list[Any], config: IdentificationConfig) -> Result:
    """``result`` whose matched speakers carry the enrolled identity, the voiceprint match as its evidence."""
    named = [VoiceprintEvidence.from_match(m) for m in matches if m.name]
    identities = {
        cue.label: Identity(vp.name, vp.role, vp.confidence, (Evidence(cue.source, cue.weight, cue.text),))
        for vp, cue in zip(named, voiceprint_cues(named, config))
    }
    speakers = [dataclasses.replace(s, identity=identities[s.label]) if s.label in identities else s
                for s in result.speakers]
    return dataclasses.replace(result, speakers=speakers)
