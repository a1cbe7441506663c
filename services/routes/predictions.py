"""A stream's predictions: live over Server-Sent Events and WebSocket, and one by event id.

The live feeds send every prediction published from the moment the client connects (or after its
cursor), filtered by model version and role; :mod:`meander.services.routes.feeds` describes the SSE
format. A WebSocket text frame is the same JSON object as an SSE event's data, plus its ``cursor``,
which ``?cursor=`` resumes after. Browsers cannot set a WebSocket's headers, so the socket also
takes the key as ``?api_key=``; a refused socket is accepted, then closed with a code and the
reason: 1008 (no key, wrong key, missing scope), 4400 (a malformed parameter), 4404 (an unknown
stream), 1013 (the broker is down, or the client too slow: resume later).

The live routes are declared before ``/predictions/{event_id}``, which would otherwise take
``live`` for an event id.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Annotated, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, WebSocket
from fastapi.websockets import WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from meander import topics
from meander.events import Envelope, Prediction
from meander.schema import shown
from meander.services.auth import ApiKeys, Caller, require
from meander.services.context import Service, ServiceDep, StreamDep
from meander.services.index import PredictionLookup, lookup
from meander.services.live import Ended, LiveFeed
from meander.services.problems import JSONRoute, refused
from meander.services.routes.feeds import (
    LastEventId,
    event_data,
    event_stream,
    event_stream_responses,
    open_feed,
)

__all__ = ["PredictionFilter", "router"]

# Scopes per route: a WebSocket route checks its key itself (require() reads an HTTP request).
router = APIRouter(tags=["predictions"], route_class=JSONRoute)

POLICY_VIOLATION, TRY_AGAIN_LATER, BAD_REQUEST, NOT_FOUND = 1008, 1013, 4400, 4404
MAX_REASON_BYTES = 123  # what a WebSocket close frame can carry


class PredictionFilter(BaseModel):
    """Which predictions a client wants; both filters are optional.

    >>> PredictionFilter(role="challenger").role
    'challenger'
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="only this model version", examples=[3]
    )
    role: Literal["champion", "challenger"] | None = Field(
        default=None, description="only the served (champion) or the shadow predictions"
    )

    def render(self, envelope: Envelope) -> dict[str, Any] | None:
        payload = envelope.payload
        if not isinstance(payload, Prediction):
            return None
        if self.model is not None and payload.version != self.model:
            return None
        if self.role is not None and payload.role != self.role:
            return None
        return event_data(envelope)


@router.get(
    "/streams/{stream}/predictions/live",
    summary="Follow a stream's predictions live (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses=event_stream_responses(
        "prediction",
        {"id": "4b1e", "time": "2024-05-01T12:00:00Z", "event_id": "tx-1", "version": 3},
    ),
    dependencies=[Depends(require("read"))],
)
async def live_predictions(
    service: ServiceDep,
    stream: StreamDep,
    filters: Annotated[PredictionFilter, Query()],
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Every prediction published from now on (or after Last-Event-ID), as ``prediction``
    events whose data is the prediction with its CloudEvents id and time."""
    feed = await open_feed(service, topics.predictions(stream.name), filters.render, last_event_id)
    return event_stream(feed, "prediction")


@router.websocket("/streams/{stream}/predictions/ws")
async def prediction_socket(websocket: WebSocket, stream: str) -> None:
    """Predictions as JSON text frames (filters ``?model=``, ``?role=``; ``?cursor=``)."""
    service: Service = websocket.app.state.service
    try:
        _socket_caller(websocket)
        config = service.stream(stream)
        asked = websocket.query_params
        filters = PredictionFilter.model_validate(
            {k: asked[k] for k in ("model", "role") if k in asked}
        )
        feed = await open_feed(
            service, topics.predictions(config.name), filters.render, asked.get("cursor"), "cursor"
        )
    except _Refused as refused:
        await _refuse(websocket, refused.code, refused.reason)
        return
    except ValidationError as error:
        await _refuse(websocket, BAD_REQUEST, _first_problem(error))
        return
    except HTTPException as error:
        code = {400: BAD_REQUEST, 404: NOT_FOUND}.get(error.status_code, TRY_AGAIN_LATER)
        await _refuse(websocket, code, str(error.detail))
        return
    await websocket.accept()
    try:
        await _pump(websocket, feed)
    finally:
        await run_in_threadpool(feed.close)


@router.get(
    "/streams/{stream}/predictions/{event_id}",
    summary="One event's predictions: the champion's, and the challengers' in shadow",
    response_model=PredictionLookup,
    responses={404: {"description": "no prediction for this event: not yet, or expired"}},
    dependencies=[Depends(require("read"))],
)
def prediction(
    service: ServiceDep,
    stream: StreamDep,
    event_id: Annotated[
        str, Path(min_length=1, max_length=200, description="the event's id", examples=["tx-1"])
    ],
) -> PredictionLookup:
    """What the champion answered for ``event_id``, and what every challenger would have."""
    found = lookup(service.runtime.store, stream.name, event_id)
    if found is None:
        ttl = service.settings.service.prediction_ttl_seconds
        raise refused(
            404,
            ["path", "event_id"],
            f"no prediction for event {shown(event_id)} of stream {stream.name!r}: it was not "
            f"scored (or indexed) yet, or its prediction is older than the {ttl}s it is kept",
            "not_found",
        )
    return found


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _socket_caller(websocket: WebSocket) -> Caller:
    """Who is calling, from X-API-Key, Authorization: Bearer or ?api_key=; read scope only."""
    keys: ApiKeys = websocket.app.state.keys
    bearer = websocket.headers.get("authorization", "")
    presented = (
        websocket.headers.get("x-api-key")
        or (bearer[7:].strip() if bearer[:7].lower() == "bearer " else None)
        or websocket.query_params.get("api_key")
    )
    if presented is None:
        if keys.anonymous is None:
            raise _Refused(
                POLICY_VIOLATION, "an API key is required: X-API-Key, Authorization or ?api_key="
            )
        caller = keys.anonymous
    else:
        found = keys.caller(presented)
        if found is None:
            raise _Refused(POLICY_VIOLATION, "the API key is not valid")
        caller = found
    if not caller.may("read"):
        raise _Refused(POLICY_VIOLATION, f"the key {caller.name[:40]!r} lacks the 'read' scope")
    return caller


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    # Accepted first: a socket closed during the handshake reaches the client as a bare 403.
    await websocket.accept()
    cut = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
    await websocket.close(code, cut)


async def _pump(websocket: WebSocket, feed: LiveFeed) -> None:
    """Send the feed's deliveries until it ends or the client leaves."""
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            # The client leaving must end the feed even while no prediction comes.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            async with aclosing(feed.deliveries()) as deliveries:
                async for item in deliveries:
                    if isinstance(item, Ended):
                        cut = item.reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
                        await websocket.close(TRY_AGAIN_LATER, cut)
                        break
                    frame = orjson.dumps({"cursor": item.cursor, **item.data}).decode()
                    await websocket.send_text(frame)
        except (WebSocketDisconnect, OSError):
            pass  # the client left mid-send
        group.cancel_scope.cancel()


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}"
