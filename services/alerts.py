"""Alerts: their history, and webhook subscriptions with their delivery records.

The history is the capped Redis stream the notifier writes (``meander:alerts:log``), newest
first. Subscriptions live in Redis (:mod:`services.subscriptions`) and every notifier picks up a
change at its next step; a subscription's secret is in the answer that creates it (or rotates
it), and in no other.

>>> import fakeredis
>>> from fastapi.testclient import TestClient
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.runtime import Runtime
>>> from meander.store import memory_store
>>> from services import create_app
>>> open_ = Settings(service={"anonymous_scopes": ["admin"], "allow_private_webhooks": True})
>>> runtime = Runtime(open_, MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
>>> client = TestClient(create_app(open_, runtime=runtime))
>>> made = client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}).json()
>>> made["format"], made["secret"].startswith("whsec_")
('cloudevents', True)
>>> "secret" in client.get(f"/v1/subscriptions/{made['id']}").json()
False
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal, NoReturn

import orjson
import redis
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from consumers.deliveries import Delivery
from consumers.notifier import log_key
from consumers.targets import UnsafeTarget, WebhookUrl, check_target
from consumers.webhooks import SEVERITIES
from meander.config import Settings
from meander.events import Alert
from services.auth import require
from services.context import Service, ServiceDep
from services.subscriptions import (
    AlertKind,
    Filters,
    Format,
    Subscription,
    Subscriptions,
    UnknownSubscription,
)

__all__ = [
    "AlertHistory",
    "Deliveries",
    "LoggedAlert",
    "SubscriptionCreate",
    "SubscriptionCreated",
    "SubscriptionList",
    "SubscriptionUpdate",
    "router",
]

HISTORY = log_key("alerts")
_PAGE = 500

router = APIRouter(tags=["alerts"])
admin = [Depends(require("admin"))]


SubscriptionId = Annotated[
    str, Path(min_length=1, max_length=64, description="the id", examples=["sub_4f9c2d1e8a7b"])
]


class LoggedAlert(Alert):
    """An alert as the history holds it: its CloudEvents id and time, then its fields."""

    id: str = Field(examples=["01J9ZQ4V8S1K6T3W2X5Y7Z9A0B"])
    time: datetime | None = None


class AlertHistory(BaseModel):
    """Alerts, newest first."""

    alerts: list[LoggedAlert]


class SubscriptionCreate(BaseModel):
    """A new webhook subscription."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example/meander",
                    "filters": {
                        "streams": ["fraud"],
                        "kinds": ["data_drift", "concept_drift"],
                        "min_severity": "warning",
                    },
                    "format": "alertmanager",
                    "description": "drift on fraud to the on-call channel",
                }
            ]
        },
    )

    url: WebhookUrl
    filters: Filters = Field(default_factory=Filters)
    format: Format = "cloudevents"
    description: str = Field(default="", max_length=500)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="the signing secret to use; by default one is generated",
    )


class SubscriptionUpdate(BaseModel):
    """Changes to a subscription: what is left out (or null) stays as it is."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"filters": {"min_severity": "critical"}}, {"rotate_secret": True}]
        },
    )

    url: WebhookUrl | None = None
    filters: Filters | None = None
    format: Format | None = None
    description: str | None = Field(default=None, max_length=500)
    rotate_secret: bool = Field(
        default=False, description="replace the secret; the answer shows the new one, once"
    )


class SubscriptionCreated(Subscription):
    """A subscription and its signing secret: shown in this answer only, keep it."""

    secret: str = Field(examples=["whsec_Zx3k9Q2v7LrT0bN5mWc8yHf1sJd4aPg6uEo"])


class SubscriptionUpdated(Subscription):
    """A subscription after a change; ``secret`` is the new one when it was rotated."""

    secret: str | None = None


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class Deliveries(BaseModel):
    """A subscription's latest delivery records, newest first."""

    deliveries: list[Delivery]


@router.get("/alerts", summary="Alert history", dependencies=[Depends(require("read"))])
def alert_history(
    service: ServiceDep,
    stream: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,100}$")] = None,
    kind: Annotated[AlertKind | None, Query(description="only this kind")] = None,
    severity: Annotated[
        Literal["info", "warning", "critical"], Query(description="the least severity")
    ] = "info",
    since: Annotated[
        AwareDatetime | None, Query(description="RFC 3339: detected at or after")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="RFC 3339: detected at or before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertHistory:
    """The latest alerts the notifier logged, newest first, filtered by stream, kind, least
    severity and detection time."""
    if since is not None and until is not None and since > until:
        _invalid(("query", "until"), "must not be before since", until.isoformat())
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


@router.post(
    "/subscriptions",
    summary="Subscribe a webhook",
    status_code=201,
    dependencies=admin,
    responses={422: {"description": "a field is invalid, or the URL targets a refused address"}},
)
def create_subscription(service: ServiceDep, request: SubscriptionCreate) -> SubscriptionCreated:
    """Deliveries to ``url`` start with the next alert or model event that passes the filters.
    The answer holds the signing secret: it is never shown again."""
    _check_url(service.settings, request.url)
    subscription, secret = _store(service).create(
        request.url,
        request.filters,
        format=request.format,
        description=request.description,
        secret=request.secret,
    )
    return SubscriptionCreated(**subscription.model_dump(), secret=secret)


@router.get("/subscriptions", summary="List subscriptions", dependencies=admin)
def list_subscriptions(service: ServiceDep) -> SubscriptionList:
    """Every subscription, oldest first (without secrets)."""
    return SubscriptionList(subscriptions=_store(service).all())


@router.get("/subscriptions/{subscription}", summary="Get a subscription", dependencies=admin)
def get_subscription(service: ServiceDep, subscription: SubscriptionId) -> Subscription:
    """The subscription (without its secret); 404 if there is none with this id."""
    with _known():
        return _store(service).get(subscription)


@router.patch("/subscriptions/{subscription}", summary="Change a subscription", dependencies=admin)
def update_subscription(
    service: ServiceDep, subscription: SubscriptionId, request: SubscriptionUpdate
) -> SubscriptionUpdated:
    """Change the URL, filters, format or description, or rotate the secret."""
    changes = request.model_dump(exclude={"rotate_secret"}, exclude_none=True)
    if request.filters is not None:
        changes["filters"] = request.filters  # the model itself, not its dump
    if request.url is not None:
        _check_url(service.settings, request.url)
    with _known():
        updated, secret = _store(service).update(
            subscription, changes, rotate_secret=request.rotate_secret
        )
    return SubscriptionUpdated(**updated.model_dump(), secret=secret)


@router.delete(
    "/subscriptions/{subscription}",
    summary="Delete a subscription",
    status_code=204,
    response_class=Response,
    dependencies=admin,
)
def delete_subscription(service: ServiceDep, subscription: SubscriptionId) -> None:
    """No more deliveries; its records go too."""
    with _known():
        _store(service).delete(subscription)


@router.get(
    "/subscriptions/{subscription}/deliveries", summary="Delivery records", dependencies=admin
)
def subscription_deliveries(
    service: ServiceDep,
    subscription: SubscriptionId,
    status: Annotated[Literal["delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Deliveries:
    """How the latest deliveries ended (status, attempts, last error, HTTP status), newest
    first; a delivery that failed after its last attempt stays here as failed."""
    with _known():
        found = _store(service).deliveries(subscription, status=status, limit=limit)
    return Deliveries(deliveries=found)


def _newest_first(store: redis.Redis[bytes], oldest: str) -> Iterator[dict[bytes, bytes]]:
    """The history's entries from the newest to ``oldest``, read a page at a time."""
    newest = "+"
    while page := store.xrevrange(HISTORY, max=newest, min=oldest, count=_PAGE):
        yield from (entry for _, entry in page)
        newest = "(" + page[-1][0].decode()  # exclusive: after the last one read
        if len(page) < _PAGE:
            return


def _store(service: Service) -> Subscriptions:
    return Subscriptions(service.runtime.store)


@contextmanager
def _known() -> Iterator[None]:
    try:
        yield
    except UnknownSubscription as error:
        raise HTTPException(404, str(error.args[0])) from None


def _check_url(settings: Settings, url: str) -> None:
    try:
        check_target(url, allow_private=settings.service.allow_private_webhooks)
    except UnsafeTarget as error:
        _invalid(("body", "url"), f"{error}", url)


def _invalid(loc: tuple[str, ...], message: str, given: object) -> NoReturn:
    problem = {"type": "value_error", "loc": loc, "msg": message, "input": str(given)}
    raise RequestValidationError([problem])


def _logged(event: bytes | None) -> LoggedAlert | None:
    try:
        parsed = orjson.loads(event or b"")
        fields = {"id": parsed["id"], "time": parsed.get("time"), **parsed["data"]}
        return LoggedAlert.model_validate(fields)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # not an alert this version can read: the history shows what it can
