"""Batch diarization of archives: resumable, parallel (processes or Ray), with outputs mirroring the source.

Nothing here imports Ray, HTTP or storage clients at import time: Ray loads only for ``options.ray`` and
the voiceprint store only for ``options.fingerprint``/``options.identify``.
"""

from .driver import Fingerprinter, Identifier, run_batch
from .errors import BatchError
from .options import BatchOptions
from .records import BatchPlan, BatchSummary, FileRecord

__all__ = [
    "BatchError", "BatchOptions", "BatchPlan", "BatchSummary", "FileRecord", "Fingerprinter", "Identifier",
    "run_batch",
]
