"""One worker: loads the models once, then diarizes files one by one and reports each outcome as plain data."""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

from ..errors import DiarizeError
from .options import BatchOptions


class Worker:
    """Holds a :class:`~diarize.pipeline.DiarizationPipeline` using ``threads`` torch threads.

    ``pipeline``: one already loaded with ``options.pipeline`` (e.g. a service worker's), used instead of a new one.
    """

    def __init__(self, options: BatchOptions, threads: int = 1, pipeline: Any = None) -> None:
        if pipeline is None:
            pipeline = _load_pipeline(options, threads)
        from ..multichannel import MultichannelDiarizer

        self.options = options
        self.pipeline = pipeline
        self.diarize = MultichannelDiarizer(self.pipeline) if options.multichannel else self.pipeline

    def process(self, path: str) -> dict[str, Any]:
        """``{"result": Result.to_dict(), "warnings": [...], "seconds": s}``, or ``{"error": message, "seconds": s}``.

        Anything raised while diarizing one file is that file's failure, not the worker's.
        """
        from ..audio import load_audio

        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                audio = load_audio(path, self.options.pipeline.audio, mono=not self.options.multichannel)
            result = self.diarize(audio, **self.options.hints).with_warnings(sorted({str(w.message) for w in caught}))
            out = result.to_dict(with_centroids=True, include_config=self.options.include_config)
            if self.options.include_config:
                # the user's embedding settings, not this worker's thread count: outputs must not depend on it
                out["config"] = {**out["config"], "embedding": self.options.pipeline.embedding.model_dump(mode="json")}
            return {"result": out, "warnings": result.warnings, "seconds": time.perf_counter() - start}
        except DiarizeError as exc:
            message = str(exc)
        except Exception as exc:  # a bug or resource failure on this file must not end the run
            message = f"internal error: {type(exc).__name__}: {exc}"
        return {"error": " ".join(message.split()), "seconds": time.perf_counter() - start}


def _load_pipeline(options: BatchOptions, threads: int) -> Any:
    if threads > 1 and "torch" not in sys.modules:
        # OpenMP threads that spin while they wait make torch many times slower on shared cores
        # (measured here: VAD 0.4 s -> 7 s a call with 2 threads); waiting passively costs little.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..pipeline import DiarizationPipeline

    embedding = options.pipeline.embedding.model_copy(update={"num_threads": threads})
    return DiarizationPipeline(options.pipeline.model_copy(update={"embedding": embedding}))
