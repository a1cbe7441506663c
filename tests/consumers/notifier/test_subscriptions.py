"""The subscription store: secrets kept apart, a revision per change, bounded delivery records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import fakeredis
import pydantic
import pytest

from meander.consumers.notifier.deliveries import Delivery
from meander.consumers.notifier.subscriptions import (
    Filters,
    Subscriptions,
    UnknownSubscription,
)
from meander.keys import deliveries as deliveries_key
from meander.store import redis_store


@pytest.fixture
def subscriptions() -> Subscriptions:
    return Subscriptions(fakeredis.FakeRedis(server=fakeredis.FakeServer()), deliveries_kept=3)


def delivery(event_id: str, status: str = "delivered", attempts: int = 1) -> Delivery:
    return Delivery.model_validate(
        {
            "event_id": event_id,
            "status": status,
            "attempts": attempts,
            "last_error": None if status == "delivered" else "HTTP 500",
            "http_status": 200 if status == "delivered" else 500,
            "at": datetime.now(UTC),
        }
    )


def test_the_secret_is_returned_at_creation_and_never_shown_again(
    subscriptions: Subscriptions,
) -> None:
    made, secret = subscriptions.create("https://hooks.example/in", description="on call")
    chosen, given = subscriptions.create("https://hooks.example/b", secret="a" * 20)

    assert secret.startswith("whsec_") and len(secret) > 40
    assert given == "a" * 20
    for shown in (subscriptions.get(made.id), *subscriptions.all()):
        assert "secret" not in shown.model_dump()
        assert secret not in shown.model_dump_json() and given not in shown.model_dump_json()
    _, pairs = subscriptions.snapshot()
    assert {(s.id, key) for s, key in pairs} == {(made.id, secret), (chosen.id, given)}


def test_every_change_moves_the_revision(subscriptions: Subscriptions) -> None:
    assert subscriptions.revision() == 0
    made, _ = subscriptions.create("https://hooks.example/in")
    first = subscriptions.revision()
    subscriptions.update(made.id, {"description": "changed"})
    second = subscriptions.revision()
    subscriptions.delete(made.id)
    assert 0 < first < second < subscriptions.revision()
    assert subscriptions.snapshot() == (subscriptions.revision(), [])


def test_an_update_changes_only_what_it_names_and_a_rotation_replaces_the_secret(
    subscriptions: Subscriptions,
) -> None:
    made, secret = subscriptions.create(
        "https://hooks.example/in", Filters(streams=["fraud"]), description="keep"
    )
    updated, none = subscriptions.update(made.id, {"format": "alertmanager"})
    rotated, fresh = subscriptions.update(made.id, {}, rotate_secret=True)

    assert none is None
    assert (updated.format, updated.description, updated.filters.streams) == (
        "alertmanager",
        "keep",
        ["fraud"],
    )
    assert (updated.created_at, updated.url) == (made.created_at, made.url)
    assert made.updated_at <= updated.updated_at <= rotated.updated_at
    assert fresh is not None and fresh != secret
    assert subscriptions.snapshot()[1] == [(rotated, fresh)]


def test_unknown_ids_raise(subscriptions: Subscriptions) -> None:
    for call in (
        lambda: subscriptions.get("sub_none"),
        lambda: subscriptions.update("sub_none", {"description": "x"}),
        lambda: subscriptions.delete("sub_none"),
        lambda: subscriptions.deliveries("sub_none"),
    ):
        with pytest.raises(UnknownSubscription, match="no subscription 'sub_none'"):
            call()


def test_delivery_records_are_bounded_newest_first_and_filtered(
    subscriptions: Subscriptions,
) -> None:
    made, _ = subscriptions.create("https://hooks.example/in")
    subscriptions.record([(made.id, delivery("e1", "failed", 4)), (made.id, delivery("e2"))])
    subscriptions.record([(made.id, delivery(f"e{n}")) for n in (3, 4)])

    assert [d.event_id for d in subscriptions.deliveries(made.id)] == ["e4", "e3", "e2"]
    assert [d.event_id for d in subscriptions.deliveries(made.id, limit=1)] == ["e4"]
    assert subscriptions.deliveries(made.id, status="failed") == []  # e1 was the oldest
    subscriptions.record([(made.id, delivery("e5", "failed", 4))])
    (failed,) = subscriptions.deliveries(made.id, status="failed")
    assert (failed.event_id, failed.attempts, failed.http_status) == ("e5", 4, 500)


def test_records_of_a_deleted_subscription_are_dropped_and_never_recreated(
    subscriptions: Subscriptions,
) -> None:
    made, _ = subscriptions.create("https://hooks.example/in")
    subscriptions.record([(made.id, delivery("e1"))])
    subscriptions.delete(made.id)
    subscriptions.record([(made.id, delivery("e2"))])  # a delivery that ended meanwhile

    assert subscriptions.store.exists(deliveries_key(made.id)) == 0


@pytest.mark.parametrize(
    ("filters", "problem"),
    [
        (
            {"kinds": ["drift"]},
            "'drift' is not an alert kind or model action; known: concept_drift",
        ),
        ({"streams": ["no spaces"]}, "String should match pattern"),
        ({"min_severity": "fatal"}, "Input should be 'info', 'warning' or 'critical'"),
        ({"stream": ["fraud"]}, "Extra inputs are not permitted"),
    ],
)
def test_filters_refuse_what_no_event_could_match(filters: dict[str, object], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        Filters.model_validate(filters)


@pytest.mark.integration
def test_the_store_on_real_redis(redis_url: str) -> None:
    subscriptions = Subscriptions(redis_store(redis_url), deliveries_kept=2)
    made, secret = subscriptions.create(
        "https://hooks.example/in", Filters(streams=[f"s{uuid.uuid4().hex[:8]}"])
    )
    try:
        revision, pairs = subscriptions.snapshot()
        assert (made, secret) in pairs and revision == subscriptions.revision()
        updated, _ = subscriptions.update(made.id, {"description": "on real redis"})
        assert subscriptions.get(made.id) == updated
        subscriptions.record([(made.id, delivery(f"e{n}")) for n in range(3)])
        assert [d.event_id for d in subscriptions.deliveries(made.id)] == ["e2", "e1"]
    finally:
        subscriptions.delete(made.id)
    assert subscriptions.store.exists(deliveries_key(made.id)) == 0
