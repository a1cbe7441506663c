"""The dashboard: one page that shows a stream at a glance, and the snapshot it polls.

``GET /dashboard`` serves a static page (no key needed to load it; it holds no data). The page
calls ``GET /v1/streams`` for the streams and ``GET /v1/streams/{stream}/overview`` every two
seconds, both with scope ``read``, sending the key it was given in ``?key=`` (then kept in the
browser's localStorage and dropped from the address bar) as ``X-API-Key``.

>>> from fastapi.testclient import TestClient
>>> from meander.config import Settings
>>> from meander.services import create_app
>>> client = TestClient(create_app(Settings()))
>>> page = client.get("/dashboard")
>>> page.status_code, page.headers["content-type"]
(200, 'text/html; charset=utf-8')
>>> client.get("/v1/streams/fraud/overview").status_code  # the data needs a key allowing read
401
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from meander.config import StreamConfig
from meander.runtime import Runtime
from meander.schema import shown
from meander.services.auth import Caller, require
from meander.services.context import ServiceDep, StreamDep
from meander.services.problems import JSONRoute, refused
from meander.services.routes.overview import Overview, overview

__all__ = ["Snapshots", "router"]

STATIC = Path(__file__).parent.parent / "static"
ASSETS = frozenset({"dashboard.js", "chart.js", "panels.js", "dashboard.css"})
FRESH_MS = 1_000  # a snapshot younger than this is shared by every page asking for it
PAGE_HEADERS = {
    # Everything the page loads is its own: no inline script, no third party.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    # A key given in ?key= must not leak to other sites through the Referer header.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["dashboard"], route_class=JSONRoute)
Reader = Annotated[Caller, Depends(require("read"))]


@router.get(
    "/dashboard",
    summary="The live dashboard page",
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {}}, "description": "the page (holds no data)"}},
)
async def page() -> FileResponse:
    """Throughput, rolling metric per model version with drift and promotion markers, recent
    alerts and the model lineage of a stream, refreshed every two seconds."""
    return FileResponse(STATIC / "dashboard.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/dashboard/{asset}", include_in_schema=False)
async def asset(asset: str) -> FileResponse:
    if asset not in ASSETS:  # only these names: nothing else under the package is served
        message = f"the dashboard has no {shown(asset)}; it serves {sorted(ASSETS)}"
        raise refused(404, ["path", "asset"], message, "not_found")
    return FileResponse(STATIC / asset, headers={"X-Content-Type-Options": "nosniff"})


@router.get(
    "/v1/streams/{stream}/overview",
    summary="A stream at a glance: throughput, metrics, markers, alerts, lineage",
    response_model=Overview,
    responses={
        401: {"description": "no valid API key"},
        403: {"description": "the key lacks the read scope"},
        404: {"description": "no such stream"},
        503: {"description": "Kafka or Redis cannot be reached; retry after Retry-After"},
    },
)
def stream_overview(
    _caller: Reader, request: Request, response: Response, stream: StreamDep, service: ServiceDep
) -> Overview:
    """The snapshot the dashboard polls; needs scope ``read`` (checked before the stream is
    looked up, so that a caller without a key cannot probe which streams exist).

    Counters are totals since the topics were created: take two snapshots and divide the change
    by the change of ``at_ms`` for a rate. Markers and alerts carry their event time in Unix
    milliseconds, on the same axis as ``at_ms``.
    """
    response.headers["Cache-Control"] = "no-store"
    return _snapshots(request).get(service.runtime, stream)


class Snapshots:
    """The last snapshot of each stream, kept for ``FRESH_MS``: many open pages cost one read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, Overview] = {}

    def get(self, runtime: Runtime, stream: StreamConfig) -> Overview:
        with self._lock:  # one read at a time; the others wait and share its result
            now_ms = time.time_ns() // 1_000_000
            last = self._last.get(stream.name)
            if last is None or now_ms - last.at_ms >= FRESH_MS:
                last = self._last[stream.name] = overview(runtime, stream, now_ms=now_ms)
            return last


_creating = threading.Lock()


def _snapshots(request: Request) -> Snapshots:
    state = request.app.state
    with _creating:
        if not hasattr(state, "overviews"):
            state.overviews = Snapshots()
    snapshots: Snapshots = state.overviews
    return snapshots
