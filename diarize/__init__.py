"""Speaker diarization: who spoke when, offline, on the CPU."""

import os

# oneDNN keeps a compiled kernel (with its scratch memory) per tensor shape, 1024 by default; CAM++ segments come
# in many lengths, and the cache grew a 10-minute file's peak memory from 0.9 to 1.4 GB. Read when torch loads.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

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
