"""Webhook subscriptions over HTTP: create, list, get, change, delete, and delivery records.

Subscriptions live in Redis (:mod:`meander.consumers.notifier.subscriptions`) and every notifier
picks up a change at its next step. A subscription's secret is in the answer that creates it (or
rotates it), and in no other. Everything here needs the admin scope.

>>> import fakeredis
>>> from fastapi.testclient import TestClient
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.runtime import Runtime
>>> from meander.store import memory_store
>>> from meander.services import create_app
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
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from meander.config import Settings
from meander.consumers.notifier.deliveries import Delivery
from meander.consumers.notifier.subscriptions import (
    Filters,
    Format,
    Subscription,
    Subscriptions,
    UnknownSubscription,
)
from meander.consumers.notifier.targets import UnsafeTarget, WebhookUrl, check_target
from meander.services.auth import require
from meander.services.bodies import Check, invalid, refuse_any
from meander.services.context import Service, ServiceDep
from meander.services.problems import JSONRoute, Problems, refused

__all__ = [
    "Deliveries",
    "SubscriptionCreate",
    "SubscriptionCreated",
    "SubscriptionList",
    "SubscriptionUpdate",
    "router",
]

router = APIRouter(tags=["subscriptions"], route_class=JSONRoute)
admin = [Depends(require("admin"))]

SubscriptionId = Annotated[
    str, Path(min_length=1, max_length=64, description="the id", examples=["sub_4f9c2d1e8a7b"])
]


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


@router.post(
    "/subscriptions",
    summary="Subscribe a webhook",
    status_code=201,
    dependencies=admin,
    responses={
        422: {
            "model": Problems,
            "description": "a field is invalid, the URL targets a refused address, or a "
            "filter names a stream that is not configured",
        }
    },
)
def create_subscription(service: ServiceDep, request: SubscriptionCreate) -> SubscriptionCreated:
    """Deliveries to ``url`` start with the next alert or model event that passes the filters.
    The answer holds the signing secret: it is never shown again."""
    _check_url(service.settings, request.url)
    _check_streams(service.settings, request.filters)
    subscription, secret = _store(service).create(
        request.url,
        request.filters,
        format=request.format,
        description=request.description,
        secret=request.secret,
    )
    return SubscriptionCreated(**subscription.shown().model_dump(), secret=secret)


@router.get("/subscriptions", summary="List subscriptions", dependencies=admin)
def list_subscriptions(service: ServiceDep) -> SubscriptionList:
    """Every subscription, oldest first (without secrets)."""
    return SubscriptionList(subscriptions=[found.shown() for found in _store(service).all()])


@router.get("/subscriptions/{subscription}", summary="Get a subscription", dependencies=admin)
def get_subscription(service: ServiceDep, subscription: SubscriptionId) -> Subscription:
    """The subscription (without its secret); 404 if there is none with this id."""
    with _known():
        return _store(service).get(subscription).shown()


@router.patch("/subscriptions/{subscription}", summary="Change a subscription", dependencies=admin)
def update_subscription(
    service: ServiceDep, subscription: SubscriptionId, request: SubscriptionUpdate
) -> SubscriptionUpdated:
    """Change the URL, filters, format or description, or rotate the secret."""
    changes = request.model_dump(exclude={"rotate_secret"}, exclude_none=True)
    if request.filters is not None:
        _check_streams(service.settings, request.filters)
        changes["filters"] = request.filters  # the model itself, not its dump
    if request.url is not None:
        _check_url(service.settings, request.url)
    with _known():
        updated, secret = _store(service).update(
            subscription, changes, rotate_secret=request.rotate_secret
        )
    return SubscriptionUpdated(**updated.shown().model_dump(), secret=secret)


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


def _store(service: Service) -> Subscriptions:
    return Subscriptions(service.runtime.store)


@contextmanager
def _known() -> Iterator[None]:
    try:
        yield
    except UnknownSubscription as error:
        raise refused(404, ["path", "subscription"], str(error.args[0]), "not_found") from None


def _check_url(settings: Settings, url: str) -> None:
    try:
        check_target(url, allow_private=settings.service.allow_private_webhooks)
    except UnsafeTarget as error:
        raise invalid(["url"], str(error)) from None


def _check_streams(settings: Settings, filters: Filters) -> None:
    # A misspelt stream matched no event: the subscription was made and never called.
    known = {stream.name for stream in settings.streams}
    problems: list[Check] = [
        (("filters", "streams", index), "value_error", _unknown(name, known))
        for index, name in enumerate(filters.streams)
    ]
    refuse_any([problems])


def _unknown(name: str, known: set[str]) -> str | None:
    if name in known:
        return None
    configured = ", ".join(sorted(known)) or "none"
    return f"stream {name!r} is not configured (configured: {configured})"
