"""HTTP request metrics for the service: counts and durations by method, route and status.

The route is the template a request matched (``/v1/streams/{stream}/events``), never its raw
path, so the label stays bounded whatever paths clients try; a request no route matches is
counted under ``unmatched``, and a method outside the usual seven under ``other``. The
duration runs from the request's arrival to the start of its answer: a live feed (SSE) would
otherwise count its whole life as one request's time. WebSocket sessions are not requests,
and are not counted.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from prometheus_client import REGISTRY
>>> app = FastAPI()
>>> @app.get("/docs-http/{name}")
... def hello(name: str) -> str:
...     return name
>>> app.add_middleware(RequestMetrics)
>>> labels = {"method": "GET", "route": "/docs-http/{name}", "status": "200"}
>>> before = REGISTRY.get_sample_value("meander_http_requests_total", labels) or 0.0
>>> TestClient(app).get("/docs-http/ada").json()
'ada'
>>> REGISTRY.get_sample_value("meander_http_requests_total", labels) - before
1.0
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meander.telemetry.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

__all__ = ["RequestMetrics", "route_of"]

UNMATCHED = "unmatched"
# A client may send any token as a method; only these are labels of their own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware that counts and times every HTTP request; add it outermost, so that
    answers given by other middleware (a 413) are counted too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def watched(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                _count(scope, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if not answered:  # the server answers 500 for what escaped the app
                _count(scope, 500, time.perf_counter() - started)
            raise


def route_of(scope: Scope) -> str:
    """The template of the route ``scope`` matched, or ``unmatched``."""
    route = scope.get("route")
    if route is None:
        # Answered before routing (a body over the limit): find the route it would have had.
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                route = candidate
                break
    path: Any = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _count(scope: Scope, status: int, seconds: float) -> None:
    method = scope["method"] if scope["method"] in METHODS else "other"
    route = route_of(scope)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)
