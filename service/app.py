"""The FastAPI application: ``create_app()`` builds it (``uvicorn --factory service.app:create_app``)."""

from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator

from fastapi import FastAPI

from . import errors
from .core import Service
from .metrics import MetricsMiddleware
from .routes import ops, v1
from .speakers import router as voiceprint_routes
from .settings import Settings
from .uploads import BodyLimitMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, configured by ``settings`` (default: ``DIARIZE_*`` variables and ``$DIARIZE_SETTINGS``)."""
    settings = settings or Settings()
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="diarize",
        version="1",
        summary="Speaker diarization and identification: who spoke when.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.auth = service.auth
    errors.install(app)
    app.include_router(v1)
    app.include_router(voiceprint_routes)
    app.include_router(ops)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    logging.getLogger("diarize.service").setLevel(logging.INFO)
    return app
