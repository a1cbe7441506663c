"""Live feeds over Server-Sent Events: how every one is sent, and the alerts feed.

Each client gets its own reader of the topic (:mod:`meander.services.live`), so every service
process delivers every event to its own clients. An SSE event is::

    event: prediction            (or: alert)
    id: 0:15,1:7,2:30            (the cursor: resume with it as Last-Event-ID)
    data: {"id": ..., "time": ..., <the payload's fields>}

The stream opens with an ``id:``-only block (no data: browsers dispatch nothing, but take it
as the Last-Event-ID, so even a reconnect before the first event loses nothing), carries a
``: ping`` comment every 15 s for proxies, and ends with ``event: end`` (``data:
{"reason": ...}``) when the server ends it. The predictions' feeds are in
:mod:`meander.services.routes.predictions`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from meander import topics
from meander.events import Alert, Envelope
from meander.events.headers import rfc3339
from meander.exceptions import BusError
from meander.services.auth import require
from meander.services.context import Service, ServiceDep, unavailable
from meander.services.live import CursorError, Delivery, Ended, LiveFeed, Render
from meander.services.problems import JSONRoute, refused
from meander.vocabulary import ALERT_KINDS, SEVERITIES, Severity

__all__ = [
    "AlertFilter",
    "LastEventId",
    "event_data",
    "event_stream",
    "event_stream_responses",
    "open_feed",
    "router",
]

PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30.0

router = APIRouter(tags=["alerts"], dependencies=[Depends(require("read"))], route_class=JSONRoute)

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="the id of the last event received: the feed resumes just after it",
        examples=["0:15,1:7,2:30"],
    ),
]


def event_stream_responses(name: str, example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of an SSE route whose events are called ``name``.

    >>> print(event_stream_responses("alert", {"id": "a1"})[200]["content"]["text/event-stream"]
    ...       ["example"].strip())
    event: alert
    id: 0:16,1:9,2:12
    data: {"id":"a1"}
    """
    sample = f"event: {name}\nid: 0:16,1:9,2:12\ndata: {orjson.dumps(example).decode()}\n\n"
    return {
        200: {
            "description": f"Server-Sent Events called {name!r}, until the client leaves",
            "content": {"text/event-stream": {"example": sample}},
        },
        400: {"description": "the Last-Event-ID is not a cursor of this feed"},
        503: {"description": "the broker is down"},
    }


def event_data(envelope: Envelope) -> dict[str, Any]:
    """What a client receives for an event: its CloudEvents id and time, then its payload."""
    moment = None if envelope.time is None else rfc3339(envelope.time)
    return {"id": envelope.id, "time": moment, **envelope.payload.model_dump(mode="json")}


class AlertFilter(BaseModel):
    """Which alerts a client wants: a stream, a kind, a least severity.

    >>> AlertFilter(severity="warning").severity
    'warning'
    >>> AlertFilter(kind="drift")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AlertFilter
    kind
      Value error, 'drift' is not an alert kind; known: concept_drift, ...
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    stream: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,100}$", description="only this stream's"
    )
    kind: str | None = Field(
        default=None, description="only this kind", json_schema_extra={"enum": list(ALERT_KINDS)}
    )
    severity: Severity = Field(default="info", description="the least severity to send")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        if kind is not None and kind not in ALERT_KINDS:
            raise ValueError(f"{kind[:40]!r} is not an alert kind; known: {', '.join(ALERT_KINDS)}")
        return kind

    def render(self, envelope: Envelope) -> dict[str, Any] | None:
        alert = envelope.payload
        if not isinstance(alert, Alert):
            return None
        if self.stream is not None and alert.stream != self.stream:
            return None
        if self.kind is not None and alert.kind != self.kind:
            return None
        if SEVERITIES.index(alert.severity) < SEVERITIES.index(self.severity):
            return None
        return event_data(envelope)


@router.get(
    "/alerts/live",
    summary="Follow alerts live (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses=event_stream_responses(
        "alert",
        {"id": "9f2c", "time": "2024-05-01T12:00:00Z", "kind": "data_drift", "stream": "fraud"},
    ),
)
async def live_alerts(
    service: ServiceDep,
    filters: Annotated[AlertFilter, Query()],
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Every alert published from now on (or after Last-Event-ID), as ``alert`` events whose
    data is the alert with its CloudEvents id and time."""
    feed = await open_feed(service, topics.ALERTS, filters.render, last_event_id)
    return event_stream(feed, "alert")


async def open_feed(
    service: Service, topic: str, render: Render, after: str | None, field: str = "Last-Event-ID"
) -> LiveFeed:
    """A reader of ``topic`` for one client, opened in a worker thread: 400 for a bad cursor
    (``after``, which the client sent as ``field``), 503 when the broker is down."""

    def opened() -> LiveFeed:
        try:
            return LiveFeed.open(
                service.runtime.bus,
                topic,
                render,
                after=after,
                max_event_bytes=service.settings.max_event_bytes,
            )
        except CursorError as error:
            where = ["query", field] if field == "cursor" else ["header", field.lower()]
            raise refused(400, where, f"{field}: {error}", "bad_cursor") from None
        except BusError as error:
            raise unavailable(service.settings, error) from None

    return await run_in_threadpool(opened)


class _SlowClientCut(logging.Filter):
    """uvicorn's report of a live feed whose client read nothing for ``SEND_TIMEOUT_SECONDS``,
    said as what it is: one line, a warning. The client was cut, which is what the timeout is
    for; uvicorn logged it as "Exception in ASGI application", an ERROR with the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, SendTimeoutError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = (
                f"a live feed's client read nothing for {SEND_TIMEOUT_SECONDS:g} s: its "
                "connection was cut (it resumes from the cursor of the last event it read)"
            )
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


logging.getLogger("uvicorn.error").addFilter(_SlowClientCut())


def event_stream(feed: LiveFeed, name: str) -> EventSourceResponse:
    """The SSE response for ``feed``, its events called ``name``."""
    return EventSourceResponse(
        _events(feed, name),
        ping=PING_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        background=BackgroundTask(feed.close),  # also when the stream never started (HEAD)
    )


async def _events(feed: LiveFeed, name: str) -> AsyncIterator[ServerSentEvent | bytes]:
    yield ServerSentEvent(id=feed.start_cursor, comment="reading; events follow")
    async with aclosing(feed.batches()) as batches:
        async for batch in batches:
            # One write for what is waiting: a busy stream costs a send per batch, not per event.
            yield b"".join(_encoded(item, name) for item in batch)


def _encoded(item: Delivery | Ended, name: str) -> bytes:
    if isinstance(item, Ended):
        return ServerSentEvent(orjson.dumps({"reason": item.reason}).decode(), event="end").encode()
    return b"id: %s\r\nevent: %s\r\ndata: %s\r\n\r\n" % (
        item.cursor.encode(),
        name.encode(),
        orjson.dumps(item.data),
    )
