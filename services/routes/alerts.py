"""The alert history: the capped Redis stream the notifier writes (``meander:alerts:log``),
newest first, filtered by stream, kind, least severity and detection time.

>>> import fakeredis
>>> from fastapi.testclient import TestClient
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.config import Settings
>>> from meander.runtime import Runtime
>>> from meander.store import memory_store
>>> from meander.services import create_app
>>> open_ = Settings(service={"anonymous_scopes": ["read"]})
>>> runtime = Runtime(open_, MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
>>> TestClient(create_app(open_, runtime=runtime)).get("/v1/alerts").json()
{'alerts': []}
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import orjson
import redis
from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field, WithJsonSchema

from meander import keys
from meander.consumers.notifier.subscriptions import (
    AlertKind,
)
from meander.events import Alert
from meander.events.values import MOMENT_SCHEMA
from meander.services.auth import require
from meander.services.context import ServiceDep
from meander.services.problems import JSONRoute
from meander.vocabulary import SEVERITIES, Severity

__all__ = ["AlertHistory", "LoggedAlert", "router"]

HISTORY = keys.log("alerts")
_PAGE = 500

# Query strings are text: "1767225600" reads as Unix seconds, as a number in a body does.
AwareMoment = Annotated[AwareDatetime, WithJsonSchema(MOMENT_SCHEMA, mode="validation")]

router = APIRouter(tags=["alerts"], route_class=JSONRoute)


class LoggedAlert(Alert):
    """An alert as the history holds it: its CloudEvents id and time, then its fields."""

    id: str = Field(examples=["01J9ZQ4V8S1K6T3W2X5Y7Z9A0B"])
    time: datetime | None = None


class AlertHistory(BaseModel):
    """Alerts, newest first."""

    alerts: list[LoggedAlert]


@router.get("/alerts", summary="Alert history", dependencies=[Depends(require("read"))])
def alert_history(
    service: ServiceDep,
    stream: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,100}$")] = None,
    kind: Annotated[AlertKind | None, Query(description="only this kind")] = None,
    severity: Annotated[Severity, Query(description="the least severity")] = "info",
    since: Annotated[
        AwareMoment | None, Query(description="RFC 3339 or Unix time: detected at or after")
    ] = None,
    until: Annotated[
        AwareMoment | None, Query(description="RFC 3339 or Unix time: detected at or before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertHistory:
    """The latest alerts the notifier logged, newest first, filtered by stream, kind, least
    severity and detection time."""
    if since is not None and until is not None and since > until:
        _invalid(("query", "until"), "must not be before since")
    rank = SEVERITIES.index(severity)
    # A log entry is written after its alert is detected: older entries cannot match `since`.
    oldest = "-" if since is None else str(max(0, int(since.timestamp() * 1000)))
    found: list[LoggedAlert] = []
    for entry in _newest_first(service.runtime.store, oldest):
        if stream is not None and entry.get(b"stream", b"").decode() != stream:
            continue
        if kind is not None and entry.get(b"kind", b"").decode() != kind:
            continue
        logged = _logged(entry.get(b"event"))
        if logged is None or SEVERITIES.index(logged.severity) < rank:
            continue
        detected = logged.detected_at
        if detected.tzinfo is None:  # written by a producer that left out the offset
            detected = detected.replace(tzinfo=UTC)
        if (since is not None and detected < since) or (until is not None and detected > until):
            continue
        found.append(logged)
        if len(found) == limit:
            break
    return AlertHistory(alerts=found)


def _newest_first(store: redis.Redis[bytes], oldest: str) -> Iterator[dict[bytes, bytes]]:
    """The history's entries from the newest to ``oldest``, read a page at a time."""
    newest = "+"
    while page := store.xrevrange(HISTORY, max=newest, min=oldest, count=_PAGE):
        yield from (entry for _, entry in page)
        newest = "(" + page[-1][0].decode()  # exclusive: after the last one read
        if len(page) < _PAGE:
            return


def _logged(event: bytes | None) -> LoggedAlert | None:
    try:
        parsed = orjson.loads(event or b"")
        fields = {"id": parsed["id"], "time": parsed.get("time"), **parsed["data"]}
        return LoggedAlert.model_validate(fields)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # not an alert this version can read: the history shows what it can


def _invalid(loc: tuple[str, ...], message: str) -> NoReturn:
    raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])
