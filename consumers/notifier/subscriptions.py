"""Webhook subscriptions and their delivery records, kept in Redis for the API and the notifier.

Redis holds

- ``meander:subscriptions``: a hash of subscription id to its JSON (never the secret);
- ``meander:subscriptions:secrets``: a hash of subscription id to its signing secret, read only
  by the notifier, so that listing subscriptions cannot leak one;
- ``meander:subscriptions:revision``: a counter bumped by every change, which every notifier
  reads each step to reload only when something changed;
- ``meander:subscriptions:{id}:deliveries``: a capped stream of the latest delivery records.

The secret is returned once, by :meth:`Subscriptions.create` (and by a rotation).

>>> import fakeredis
>>> subscriptions = Subscriptions(fakeredis.FakeRedis(server=fakeredis.FakeServer()))
>>> made, secret = subscriptions.create("https://hooks.example/in", Filters(kinds=["data_drift"]))
>>> subscriptions.get(made.id).filters.kinds, len(secret) > 30, subscriptions.revision()
(['data_drift'], True, 1)
>>> "secret" in subscriptions.get(made.id).model_dump()
False
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from meander import keys
from meander.consumers.notifier.deliveries import Delivery
from meander.consumers.notifier.webhooks import Format
from meander.exceptions import MeanderError
from meander.vocabulary import ALERT_KINDS, KINDS, Severity

__all__ = [
    "ALERT_KINDS",
    "KINDS",
    "AlertKind",
    "Delivery",
    "Filters",
    "Format",
    "Subscription",
    "Subscriptions",
    "UnknownSubscription",
]

DELIVERIES_KEPT = 1_000  # delivery records per subscription, the oldest dropped first
KEY = keys.SUBSCRIPTIONS
SECRETS = keys.SUBSCRIPTION_SECRETS
REVISION = keys.SUBSCRIPTIONS_REVISION


def _one_of(known: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in known:
            raise ValueError(f"{value[:40]!r} is not {what}; known: {', '.join(known)}")
        return value

    return check


Kind = Annotated[
    str,
    AfterValidator(_one_of(KINDS, "an alert kind or model action")),
    WithJsonSchema({"type": "string", "enum": list(KINDS)}),
]
AlertKind = Annotated[
    str,
    AfterValidator(_one_of(ALERT_KINDS, "an alert kind")),
    WithJsonSchema({"type": "string", "enum": list(ALERT_KINDS)}),
]
StreamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]


class UnknownSubscription(MeanderError, KeyError):
    """No subscription has this id (it never existed, or was deleted)."""

    def __init__(self, subscription: str) -> None:
        super().__init__(f"no subscription {subscription!r}; list them to see ids")


class Filters(BaseModel):
    """What a subscription receives: empty lists let everything through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    streams: list[StreamName] = Field(default_factory=list, max_length=100)
    kinds: list[Kind] = Field(
        default_factory=list,
        max_length=len(KINDS),
        description="alert kinds and model actions to send; empty sends all",
    )
    min_severity: Severity = Field(
        default="info", description="model events count as info, a rollback as warning"
    )


class Subscription(BaseModel):
    """A webhook subscription as stored and shown (the secret is never part of it)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(examples=["sub_4f9c2d1e8a7b6c5d"])
    url: str = Field(examples=["https://hooks.example/meander"])
    filters: Filters
    format: Format = Field(
        description="cloudevents: the CloudEvents JSON; alertmanager: its webhook payload v4 "
        "(alerts only)"
    )
    description: str = Field(examples=["drift on fraud to the on-call channel"])
    created_at: datetime
    updated_at: datetime

    def shown(self) -> Subscription:
        """This subscription as the API shows it: a password in the URL is masked.

        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> made = Subscription(id="sub_1", url="https://bot:s3cret@hooks.example/in",
        ...     filters=Filters(), format="cloudevents", description="",
        ...     created_at=now, updated_at=now)
        >>> made.shown().url
        'https://bot:***@hooks.example/in'
        """
        parts = urlsplit(self.url)
        if parts.password is None:
            return self
        userinfo, _, host = parts.netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
        return self.model_copy(update={"url": urlunsplit(parts._replace(netloc=netloc))})


class Subscriptions:
    """The subscriptions in ``store``, with their secrets and delivery records."""

    def __init__(self, store: redis.Redis[bytes], *, deliveries_kept: int = DELIVERIES_KEPT):
        self.store = store
        self.deliveries_kept = deliveries_kept

    def create(
        self,
        url: str,
        filters: Filters | None = None,
        *,
        format: Format = "cloudevents",
        description: str = "",
        secret: str | None = None,
    ) -> tuple[Subscription, str]:
        """Save a new subscription; returns it and its secret (``secret`` or a fresh one)."""
        now = datetime.now(UTC)
        subscription = Subscription(
            id="sub_" + secrets.token_hex(8),
            url=url,
            filters=filters or Filters(),
            format=format,
            description=description,
            created_at=now,
            updated_at=now,
        )
        secret = secret or _new_secret()
        with self.store.pipeline() as pipe:
            pipe.hset(KEY, subscription.id, subscription.model_dump_json())
            pipe.hset(SECRETS, subscription.id, secret)
            pipe.incr(REVISION)
            pipe.execute()
        return subscription, secret

    def get(self, subscription: str) -> Subscription:
        """The subscription ``subscription``; :class:`UnknownSubscription` if there is none."""
        stored = self.store.hget(KEY, subscription)
        if stored is None:
            raise UnknownSubscription(subscription)
        return Subscription.model_validate_json(stored)

    def all(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        stored = self.store.hvals(KEY)
        found = [Subscription.model_validate_json(value) for value in stored]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def update(
        self, subscription: str, changes: dict[str, object], *, rotate_secret: bool = False
    ) -> tuple[Subscription, str | None]:
        """Apply ``changes`` (url, filters, format, description); returns the subscription and,
        when ``rotate_secret``, its new secret (the old one stops signing at once)."""
        secret = _new_secret() if rotate_secret else None
        with self.store.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(KEY)  # a delete meanwhile must not be undone by this write
                    # Watching, the pipeline answers at once (the stubs cannot tell).
                    stored = cast("bytes | None", pipe.hget(KEY, subscription))
                    if stored is None:
                        raise UnknownSubscription(subscription)
                    current = Subscription.model_validate_json(stored).model_dump()
                    changed = {**current, **changes, "updated_at": datetime.now(UTC)}
                    updated = Subscription.model_validate(changed)
                    pipe.multi()
                    pipe.hset(KEY, subscription, updated.model_dump_json())
                    if secret is not None:
                        pipe.hset(SECRETS, subscription, secret)
                    pipe.incr(REVISION)
                    pipe.execute()
                    return updated, secret
                except redis.WatchError:
                    continue

    def delete(self, subscription: str) -> None:
        """Forget ``subscription``, its secret and its delivery records."""
        with self.store.pipeline() as pipe:
            pipe.hdel(KEY, subscription)
            pipe.hdel(SECRETS, subscription)
            pipe.delete(keys.deliveries(subscription))
            pipe.incr(REVISION)
            removed, *_ = pipe.execute()
        if not removed:
            raise UnknownSubscription(subscription)

    def revision(self) -> int:
        """A number that changes whenever any subscription does (0 before the first)."""
        return int(self.store.get(REVISION) or 0)

    def snapshot(self) -> tuple[int, list[tuple[Subscription, str]]]:
        """The revision and every subscription with its secret, read in one transaction."""
        with self.store.pipeline() as pipe:
            pipe.get(REVISION)
            pipe.hgetall(KEY)
            pipe.hgetall(SECRETS)
            revision, stored, secrets_by_id = pipe.execute()
        pairs = [
            (Subscription.model_validate_json(value), secrets_by_id[key].decode())
            for key, value in stored.items()
            if key in secrets_by_id
        ]
        return int(revision or 0), pairs

    def record(self, deliveries: Sequence[tuple[str, Delivery]]) -> None:
        """Append each (subscription id, delivery) to its records; those of subscriptions
        deleted meanwhile are left out."""
        if not deliveries:
            return
        ids = sorted({subscription for subscription, _ in deliveries})
        present = dict(zip(ids, self.store.hmget(KEY, ids), strict=True))
        with self.store.pipeline(transaction=False) as pipe:
            for subscription, delivery in deliveries:
                if present[subscription] is not None:
                    pipe.xadd(
                        keys.deliveries(subscription),
                        {"delivery": delivery.model_dump_json()},
                        maxlen=self.deliveries_kept,
                        approximate=False,  # exactly the latest: deliveries are few
                    )
            pipe.execute()

    def deliveries(
        self,
        subscription: str,
        *,
        status: Literal["delivered", "failed"] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """The latest ``limit`` delivery records of ``subscription`` with ``status``, newest
        first; :class:`UnknownSubscription` if there is no such subscription."""
        self.get(subscription)
        found: list[Delivery] = []
        entries = self.store.xrevrange(keys.deliveries(subscription), count=self.deliveries_kept)
        for _, fields in entries:
            delivery = Delivery.model_validate_json(fields[b"delivery"])
            if status is None or delivery.status == status:
                found.append(delivery)
                if len(found) == limit:
                    break
        return found


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)
