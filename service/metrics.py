"""Prometheus metrics of one service process: requests, latency, queue depth, audio seconds processed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .core import Service


class Metrics:
    """A registry per app, so that several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("diarize_http_requests", "HTTP requests answered.", ["method", "route", "status"],
                                registry=r)
        self.latency = Histogram(
            "diarize_http_request_duration_seconds", "Time to answer an HTTP request.", ["method", "route"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600), registry=r,
        )
        self.audio_seconds = Counter("diarize_audio_seconds_processed", "Seconds of audio diarized.", ["kind"],
                                     registry=r)
        self.rejected = Counter("diarize_queue_rejections", "Requests answered 429 because the queue was full.",
                                registry=r)
        self.queue_depth = Gauge("diarize_queue_depth", "Tasks waiting for a worker.", ["kind"], registry=r)
        self.jobs = Gauge("diarize_jobs", "Jobs by status.", ["status"], registry=r)
        self.workers = Gauge("diarize_workers", "Worker processes by state.", ["state"], registry=r)
        self.restarts = Gauge("diarize_worker_restarts", "Worker processes replaced after a crash or kill.",
                              registry=r)

    def bind(self, service: "Service") -> None:
        """Read the live gauges from the service at scrape time."""
        from .pool import JOB, SYNC

        pool, store = service.pool, service.store
        self.queue_depth.labels("sync").set_function(lambda: pool.depth(SYNC))
        self.queue_depth.labels("job").set_function(lambda: pool.depth(JOB) + store.count("queued"))
        for status in ("queued", "running", "succeeded", "failed"):
            self.jobs.labels(status).set_function(lambda s=status: store.count(s))
        self.workers.labels("ready").set_function(lambda: pool.ready_workers)
        self.workers.labels("busy").set_function(lambda: pool.busy_workers)
        self.workers.labels("configured").set_function(lambda: pool.size)
        self.restarts.set_function(lambda: pool.restarts)


#: The only ``method`` label values: any other method (a client may send any token) counts as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The request's method if it is a standard one, else ``other`` (keeps the label set bounded)."""
    return method if method in METHODS else "other"


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never by raw path) and standard method."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_label(scope)
            method = method_label(scope["method"])
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


def route_label(scope: Scope) -> str:
    """The route template that served a request; FastAPI's own routes (``/docs``, ``/openapi.json``) are plain
    Starlette routes that leave no ``route`` in the scope, so they are matched here."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in getattr(scope.get("app"), "routes", ()) if r.matches(scope)[0] is Match.FULL), None)
    return getattr(route, "path", None) or "unmatched"
