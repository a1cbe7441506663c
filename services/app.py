"""The FastAPI application: the /v1 API, health and readiness, metrics, the dashboard.

``/metrics`` serves the process's registry: the service's own request counts and durations
by route template (:class:`~meander.telemetry.RequestMetrics`), and the metrics of whatever
loop components run beside it.

Routes that touch Kafka or Redis are plain ``def``: FastAPI runs them in its thread pool, so
the event loop never waits on the network. Live streams (SSE, WebSocket) read in worker
threads and hand messages to the loop.

>>> from fastapi.testclient import TestClient
>>> TestClient(create_app(Settings())).get("/healthz").json()
{'status': 'ok'}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meander.bus import connect_bus
from meander.config import Settings
from meander.exceptions import BusUnavailable, MeanderError, StoreUnavailable
from meander.runtime import Runtime
from meander.services.background import Background
from meander.services.context import Service, unavailable
from meander.services.limits import BodyLimit
from meander.services.problems import REFUSALS, install
from meander.services.routes import API_ROUTERS, dashboard
from meander.store import open_store, writable
from meander.telemetry import RequestMetrics

__all__ = ["create_app"]


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """The service for ``settings``; ``runtime`` shares already open backends (the demo's).

    Without one, the backends are connected on first use. The prediction index and
    ``service.components`` run in background threads for the app's lifetime.
    """
    service = Service(settings, runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = Background(service, settings.service.components)
        app.state.background = background
        background.start()
        try:
            yield
        finally:
            background.stop()
            if runtime is None and service.opened is not None:
                service.opened.close()

    app = FastAPI(
        title="meander",
        version="0.1.0",
        summary="Streaming MLOps for online models",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.keys = service.keys
    app.add_middleware(BodyLimit, max_bytes=settings.service.max_body_bytes)
    app.add_middleware(RequestMetrics)  # added last, so outermost: it sees BodyLimit's 413s
    install(app)
    # Any refusal of Redis (unreachable, full at its maxmemory, loading, read-only) is the
    # store's, not the request's: 503, to be sent again.
    for failure in (redis.RedisError, BusUnavailable, StoreUnavailable):
        app.add_exception_handler(failure, _unavailable(settings))
    for router in API_ROUTERS:
        app.include_router(router, prefix="/v1", responses=REFUSALS)
    app.include_router(dashboard.router)
    _operations(app, service)
    return app


def _operations(app: FastAPI, service: Service) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive (answered on the event loop: it measures the loop's health)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Kafka and Redis answer the service's own connections, its producer can send, and
        Redis takes writes (a full one still answers PING); 503 with the reason when either
        does not. Before the first request has connected, each is tried on its own."""
        settings, opened = service.settings, service.opened
        if opened is None:
            checks = {
                "bus": _check(lambda: connect_bus(settings).close()),
                "store": _check(lambda: writable(open_store(settings))),
            }
        else:
            checks = {
                "bus": opened.bus.problem() or "ok",
                "store": _check(lambda: writable(opened.store)),
            }
        ready = all(result == "ok" for result in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    def metrics() -> Response:
        """Prometheus exposition of this process's registry."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _unavailable(settings: Settings) -> Callable[[Request, Exception], Response]:
    def answer(_request: Request, error: Exception) -> Response:
        refused = isinstance(error, redis.ResponseError)
        failure = unavailable(settings, f"Redis refused the request: {error}" if refused else error)
        return JSONResponse(
            {"detail": failure.detail}, status_code=failure.status_code, headers=failure.headers
        )

    return answer


def _check(probe: Callable[[], object]) -> str:
    try:
        probe()
    except (MeanderError, redis.RedisError) as error:
        return str(error)
    return "ok"
