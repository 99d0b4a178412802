"""One object per process for everything voiceprints: what the CLI and the service call.

The embedded store is owned by exactly one process (it locks its directory): the service process,
or a single CLI command. Batch workers diarize in parallel but hand their results back to the owner,
which calls :meth:`Voiceprints.identify` / :meth:`Voiceprints.observe`.
"""

from __future__ import annotations

import os
from os import PathLike
from typing import Any, Mapping, Sequence

from ..embeddings.base import EmbeddingBackend
from ..errors import EnrollmentError, ModelMismatchError, VoiceprintError
from ..result import Result
from .calibration import Calibration, load_calibration
from .enrollment import VAD, AudioInput, Diarizer, EnrolledSpeaker, EnrollmentReport, SpeakerRegistry, prepare_sample
from .fingerprint import Appearance, Voice, VoiceLink, VoiceLinker, VoiceMatch
from .identification import SpeakerMatch, apply_names, identify_speakers
from .store import VectorStore, check_tenant, open_store

DEFAULT_TENANT = "default"


def default_tenant() -> str:
    """``$DIARIZE_TENANT`` or ``default``."""
    return check_tenant(os.environ.get("DIARIZE_TENANT") or DEFAULT_TENANT)


class Voiceprints:
    """Enrollment, identification and cross-file fingerprinting over one store and one embedding model.

    ``diarizer`` (e.g. a DiarizationPipeline) diarizes enrollment samples for the one-speaker gate and
    files for :meth:`identify_file`; without it samples are gated on VAD speech and embedding consistency.
    """

    def __init__(self, store: VectorStore, backend: EmbeddingBackend, *, diarizer: Diarizer | None = None,
                 vad: VAD | None = None, calibration: Calibration | None = None) -> None:
        self.store, self.backend, self.diarizer, self.vad = store, backend, diarizer, vad
        self.calibration = calibration or load_calibration(backend.model_id)
        if self.calibration.model_id != backend.model_id:
            raise ModelMismatchError(f"calibration of {self.calibration.model_id!r} cannot score "
                                     f"{backend.model_id!r} vectors")
        self.collection = store.collection(backend.model_id, backend.dimension)
        self.speakers = SpeakerRegistry(self.collection)
        self.voices = VoiceLinker(self.collection, self.calibration)

    @classmethod
    def open(cls, data_dir: str | PathLike[str] | None = None, *, url: str | None = None,
             api_key: str | None = None, pipeline: Any = None, **kwargs: Any) -> "Voiceprints":
        """Open the store (embedded under ``data_dir``, or the Qdrant server at ``url``) with ``pipeline``'s model.

        Without ``pipeline`` the default :class:`~diarize.pipeline.DiarizationPipeline` is loaded.
        """
        if pipeline is None:
            from ..config import PipelineConfig
            from ..pipeline import DiarizationPipeline

            pipeline = DiarizationPipeline(PipelineConfig())
        store = open_store(data_dir, url=url, api_key=api_key)
        try:
            return cls(store, pipeline.embedding_backend, diarizer=kwargs.pop("diarizer", pipeline), **kwargs)
        except BaseException:
            store.close()
            raise

    # ---------------------------------------------------------------- enrollment

    def prepare(self, audio: AudioInput) -> Any:
        """Run the quality gates on one sample and embed it (raises EnrollmentError)."""
        return prepare_sample(audio, self.backend, vad=self.vad, diarizer=self.diarizer,
                              separation=self.calibration.separation)

    def enroll(self, tenant: str, name: str, audios: AudioInput | Sequence[AudioInput], *, role: str | None = None,
               metadata: Mapping[str, Any] | None = None) -> EnrollmentReport:
        """Enroll ``name`` from one or more samples, or add them to an enrolled speaker."""
        check_tenant(tenant)
        items = list(audios) if isinstance(audios, (list, tuple)) else [audios]
        if not items:
            raise EnrollmentError("enrollment needs at least one audio sample")
        samples = [self.prepare(a) for a in items]
        return self.speakers.enroll(tenant, name, samples, role=role, metadata=metadata,
                                    consistency=self.calibration.consistency, model_id=self.backend.model_id)

    def list_speakers(self, tenant: str) -> list[EnrolledSpeaker]:
        return self.speakers.list(tenant)

    def rename_speaker(self, tenant: str, name: str, new_name: str) -> EnrolledSpeaker:
        return self.speakers.rename(tenant, name, new_name)

    def delete_speaker(self, tenant: str, name: str) -> EnrolledSpeaker:
        """Delete ``name`` and every vector stored for it."""
        return self.speakers.delete(tenant, name)

    # ---------------------------------------------------------------- identification

    def _check_model(self, result: Result) -> None:
        if result.model and result.model != self.backend.model_id:
            raise ModelMismatchError(f"result embedded by {result.model!r}; this store compares "
                                     f"{self.backend.model_id!r} voiceprints")

    def identify(self, tenant: str, result: Result, *, threshold: float | None = None) -> list[SpeakerMatch]:
        """Name the diarized speakers of ``result`` (open set, one enrolled person per speaker at most)."""
        self._check_model(result)
        return identify_speakers(result.speakers, self.speakers, tenant, self.calibration, threshold)

    def identify_file(self, tenant: str, audio: AudioInput, **hints: Any) -> tuple[Result, list[SpeakerMatch]]:
        """Diarize ``audio`` and name its speakers; returns the renamed result and the matches."""
        if self.diarizer is None:
            raise VoiceprintError("identify_file needs a diarizer (open with a DiarizationPipeline)")
        check_tenant(tenant)
        result = self.diarizer(audio, **hints) if hints else self.diarizer(audio)
        matches = self.identify(tenant, result)
        return apply_names(result, matches), matches

    # ---------------------------------------------------------------- fingerprinting

    def observe(self, tenant: str, file_id: str, result: Result) -> list[VoiceLink]:
        """Store every diarized speaker of ``file_id`` and link it to a persistent voice id."""
        self._check_model(result)
        return self.voices.observe(tenant, file_id, result.speakers)

    def appearances(self, tenant: str, voice_id: str) -> list[Appearance]:
        return self.voices.appearances(tenant, voice_id)

    def voices_in_file(self, tenant: str, file_id: str) -> list[Appearance]:
        return self.voices.voices_in_file(tenant, file_id)

    def list_voices(self, tenant: str) -> list[Voice]:
        return self.voices.voices(tenant)

    def find_voice(self, tenant: str, audio: AudioInput, limit: int = 5) -> list[VoiceMatch]:
        """The stored voices closest to the (dominant) voice of an audio sample."""
        check_tenant(tenant)
        return self.voices.find(tenant, self.prepare(audio).vector, limit)

    def delete_voice(self, tenant: str, voice_id: str) -> None:
        self.voices.delete_voice(tenant, voice_id)

    def delete_file(self, tenant: str, file_id: str) -> int:
        return self.voices.delete_file(tenant, file_id)

    # ---------------------------------------------------------------- housekeeping

    def vacuum(self, tenant: str) -> int:
        """Remove sample points an interrupted enrollment left behind; returns how many."""
        return self.speakers.vacuum(tenant)

    def delete_tenant(self, tenant: str) -> None:
        """Delete everything stored for ``tenant``: speakers, samples, observations and voices, all models."""
        self.store.delete_tenant(tenant)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Voiceprints":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
