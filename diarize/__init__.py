"""Speaker diarization: who spoke when, offline, on the CPU."""

from .config import PipelineConfig
from .errors import AudioError, ConfigError, DiarizeError, ModelError
from .result import Result, Speaker, Utterance

__all__ = [
    "AudioError",
    "ConfigError",
    "DiarizeError",
    "ModelError",
    "PipelineConfig",
    "Result",
    "Speaker",
    "Utterance",
]
