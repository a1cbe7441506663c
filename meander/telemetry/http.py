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
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meander.telemetry.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

__all__ = ["RequestMetrics"]

UNMATCHED = "unmatched"
# A client may send any token as a method; only these are labels of their own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware that counts and times every HTTP request; add it outermost, so that
    answers given by other middleware (a 413) are counted too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, tuple[Any, str]] = {}

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
                self._count(scope, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if not answered:  # the server answers 500 for what escaped the app
                self._count(scope, 500, time.perf_counter() - started)
            raise

    def route_of(self, scope: Scope) -> str:
        """The template of the route ``scope`` matched, or ``unmatched``."""
        route = scope.get("route")
        if route is None:
            # Answered before routing (a body over the limit): the route it would have had.
            for context in _contexts(_routes(scope)):
                if context.matches(scope)[0] is not Match.NONE:
                    return str(context.path)
            return UNMATCHED
        known = self._templates.get(id(route))
        if known is None or known[0] is not route:
            # A router included with a prefix keeps its routes' own paths: the template is
            # the effective path of its route context. Built once, then on a new route.
            self._templates = {
                id(context.original_route): (context.original_route, str(context.path))
                for context in _contexts(_routes(scope))
            }
            known = self._templates.get(id(route))
        path = known[1] if known is not None else getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        route = self.route_of(scope)
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


def _routes(scope: Scope) -> list[BaseRoute]:
    return list(getattr(scope.get("app"), "routes", ()))


def _contexts(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    """Each route with its effective path (``.path``) and the route itself (``.original_route``).

    FastAPI 0.16x keeps an included router apart (``iter_route_contexts`` joins the prefix);
    before, including a router copied its routes with the prefix in their own path.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        yield from (_Context(route) for route in routes)
        return
    yield from iter_route_contexts(list(routes))


class _Context:
    def __init__(self, route: BaseRoute) -> None:
        self.original_route, self.path = route, getattr(route, "path", None)
        self.matches = route.matches
