"""Voiceprints: enroll known voices, name diarized speakers, and follow unknown voices across files."""

from .api import DEFAULT_TENANT, Voiceprints, default_tenant
from .calibration import Calibration, load_calibration
from .enrollment import EnrolledSpeaker, EnrollmentReport, EnrollmentSample, SpeakerRegistry, prepare_sample
from .fingerprint import Appearance, Voice, VoiceLink, VoiceLinker, VoiceMatch
from .identification import SpeakerMatch, apply_names, assign, identify_speakers, identify_vectors
from .store import Collection, EmbeddedStore, ServerStore, VectorStore, default_data_dir, open_store

__all__ = [
    "DEFAULT_TENANT", "Appearance", "Calibration", "Collection", "EmbeddedStore", "EnrolledSpeaker",
    "EnrollmentReport", "EnrollmentSample", "ServerStore", "SpeakerMatch", "SpeakerRegistry", "VectorStore",
    "Voice", "VoiceLink", "VoiceLinker", "VoiceMatch", "Voiceprints", "apply_names", "assign", "default_data_dir",
    "default_tenant", "identify_speakers", "identify_vectors", "load_calibration", "open_store", "prepare_sample",
]
