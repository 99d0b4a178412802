"""Speaker-embedding backends behind one interface; heavy imports happen only when a backend is built."""

from __future__ import annotations

from ..config import EmbeddingConfig
from ..errors import ConfigError
from .base import EmbeddingBackend, level_gain


def load_backend(config: EmbeddingConfig = EmbeddingConfig()) -> EmbeddingBackend:
    """Build the backend named by ``config.backend``."""
    if config.backend == "resemblyzer":
        from .resemblyzer import ResemblyzerBackend

        return ResemblyzerBackend(
            weights=config.source, device=config.device, batch_size=config.batch_size, precision=config.precision
        )
    if config.backend == "ecapa":
        from .ecapa import EcapaBackend

        return EcapaBackend(source=config.source, device=config.device, batch_size=config.batch_size)
    if config.backend == "campplus":
        from .campplus import CampplusBackend

        return CampplusBackend(
            weights=config.source, device=config.device, batch_size=config.batch_size, precision=config.precision
        )
    raise ConfigError(f"unknown embedding backend {config.backend!r}")


__all__ = ["EmbeddingBackend", "level_gain", "load_backend"]
