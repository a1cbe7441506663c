"""The FastAPI application: liveness, readiness against the real backends, Prometheus metrics.

Readiness talks to Kafka and Redis with blocking clients, so its handlers are plain ``def``:
FastAPI runs them in its thread pool and the event loop never waits on the network.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meander.bus import connect_bus
from meander.config import Settings
from meander.exceptions import MeanderError
from meander.store import open_store

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """The service for ``settings``; backends are connected per readiness check, not at import."""
    app = FastAPI(title="meander", version="0.1.0", summary="Streaming MLOps for online models")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Kafka and Redis answer; 503 with the reason when either does not."""
        checks = {
            "bus": _check(lambda: connect_bus(settings).close()),
            "store": _check(lambda: open_store(settings).ping()),
        }
        ready = all(result == "ok" for result in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Response:
        """Prometheus exposition of this process's registry."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _check(probe: Callable[[], object]) -> str:
    try:
        probe()
    except MeanderError as error:
        return str(error)
    return "ok"
