"""The notifier announces every alert and model event on Redis and to webhooks, and loses none.

Webhooks are real HTTP servers on loopback ports; the bus and store are the embedded ones,
except in the integration test at the end, which runs on real Kafka and real Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from prometheus_client import REGISTRY
from redis.client import PubSub

from meander import topics
from meander.bus import Record, TopicPartition
from meander.config import Settings
from meander.consumers.notifier.notifier import Notifier
from meander.consumers.notifier.subscriptions import Filters, Subscriptions
from meander.consumers.notifier.webhooks import verify
from meander.events import Alert, DeadLetter, FeatureEvent, ModelEvent, Payload, decode, encode
from meander.exceptions import BusError
from meander.keys import channel
from meander.keys import log as log_key
from meander.runtime import Runtime
from tests.conftest import HookServer, MakeRuntime

BOUND = 30.0  # seconds any wait may take before the test fails; never reached when it passes


@pytest.fixture
def runtime_for(make_runtime: MakeRuntime) -> Callable[..., Runtime]:
    """A factory of embedded runtimes whose notifier settings are the given keywords."""

    def make(*, service: dict[str, Any] | None = None, **notifier: Any) -> Runtime:
        return make_runtime(notifier=notifier, service=service or {})

    return make


@pytest.fixture
def notifier_for(runtime_for: Callable[..., Runtime]) -> Iterator[Callable[..., Notifier]]:
    """A factory of notifiers on fresh embedded runtimes, closed at the end of the test."""
    made: list[Notifier] = []

    def make(
        *,
        webhooks: list[dict[str, Any]],
        retries: int = 2,
        service: dict[str, Any] | None = None,
        **options: Any,
    ) -> Notifier:
        runtime = runtime_for(
            webhooks=webhooks, retries=retries, timeout_seconds=5.0, service=service
        )
        notifier = Notifier(runtime, backoff=0.01, **options)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.close()


def alert(kind: str = "data_drift", stream: str = "fraud", severity: str = "warning") -> Alert:
    return Alert.model_validate(
        {"kind": kind, "stream": stream, "severity": severity, "statistic": "psi", "value": 0.4}
    )


def publish(notifier: Notifier, *payloads: Payload) -> list[Record]:
    records = [
        encode(
            topics.ALERTS if isinstance(payload, Alert) else topics.MODELS,
            payload,
            source="/test",
            subject=getattr(payload, "stream", None),
        )
        for payload in payloads
    ]
    notifier.bus.publish(records)
    return records


def dead_letters(notifier: Notifier) -> list[DeadLetter]:
    with notifier.bus.assign([TopicPartition(topics.DEADLETTER, 0)]) as reader:
        letters = [decode(message).payload for message in reader.consume(timeout=0.1)]
    assert all(isinstance(letter, DeadLetter) for letter in letters)
    return letters  # type: ignore[return-value]


def announce(notifier: Notifier) -> int:
    """Step until nothing is left to read, then wait for every delivery to end."""
    handled = 0
    while count := notifier.step(0.1):
        handled += count
    assert notifier.flush(BOUND)
    return handled


def listen(listener: PubSub, count: int) -> list[dict[str, Any]]:
    """The first ``count`` pub/sub messages (subscription confirmations are skipped)."""
    heard: list[dict[str, Any]] = []
    deadline = time.monotonic() + BOUND
    while len(heard) < count and time.monotonic() < deadline:
        message = listener.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None:
            heard.append(message)
    return heard


def ce_id(record: Record) -> str:
    return dict(record.headers)["ce_id"].decode()


def test_an_alert_reaches_the_webhook_signed_in_cloudevents_structured_mode(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[{"url": hook.url(), "secret": "s3cret"}])
    drift = alert()
    (record,) = publish(notifier, drift)

    assert announce(notifier) == 1

    (request,) = hook.wait_for(1)
    signed = request.headers["x-meander-timestamp"].encode() + b"." + request.body
    expected = hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert request.headers["x-meander-signature"] == f"sha256={expected}"
    assert abs(int(request.headers["x-meander-timestamp"]) - time.time()) < BOUND
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["x-meander-event-id"] == ce_id(record)
    body = orjson.loads(request.body)
    assert set(body) == {
        "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data",
    }  # fmt: skip
    assert (body["id"], body["type"], body["subject"]) == (ce_id(record), Alert.type, "fraud")
    assert Alert.model_validate(body["data"]) == drift
    event = from_http_event(HTTPMessage(request.headers, request.body))
    assert (event.get_id(), event.get_source()) == (ce_id(record), "/test")
    assert (notifier.delivered, notifier.failed, notifier.published) == (1, 0, 1)


def test_filters_pick_what_each_webhook_receives(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    filters: dict[str, dict[str, Any]] = {
        "/all": {},
        "/drift": {"kinds": ["data_drift"]},
        "/fraud": {"streams": ["fraud"]},
        "/critical": {"min_severity": "critical"},
        "/warning": {"min_severity": "warning"},
        "/rollbacks": {"kinds": ["rolled_back"], "streams": ["churn"]},
    }
    webhooks = [{"url": hook.url(path), **only} for path, only in filters.items()]
    notifier = notifier_for(webhooks=webhooks)
    publish(
        notifier,
        alert("data_drift", "fraud", "warning"),
        alert("concept_drift", "churn", "critical"),
        ModelEvent(action="promoted", stream="fraud", model="fraud", version=2),
        ModelEvent(action="rolled_back", stream="churn", model="churn", version=3),
    )

    announce(notifier)

    got: dict[str, list[str]] = {path: [] for path in filters}
    for request in hook.received:
        data = request.data()
        got[request.path].append(data.get("kind") or data["action"])
    # Order holds within a topic; alerts and model events may interleave either way.
    assert {path: sorted(kinds) for path, kinds in got.items()} == {
        "/all": ["concept_drift", "data_drift", "promoted", "rolled_back"],
        "/drift": ["data_drift"],
        "/fraud": ["data_drift", "promoted"],
        "/critical": ["concept_drift"],
        "/warning": ["concept_drift", "data_drift", "rolled_back"],  # a rollback is a warning
        "/rollbacks": ["rolled_back"],
    }
    assert notifier.delivered == 4 + 1 + 2 + 1 + 3 + 1


@pytest.mark.parametrize("first", [500, 503, 429])
def test_a_server_error_is_retried_until_it_succeeds(
    first: int, hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server([first, 200])
    notifier = notifier_for(webhooks=[{"url": hook.url()}], retries=2)
    (record,) = publish(notifier, alert())

    announce(notifier)

    first_try, second_try = hook.received
    assert first_try.body == second_try.body
    assert second_try.headers["x-meander-event-id"] == ce_id(record)
    assert (notifier.delivered, notifier.failed, dead_letters(notifier)) == (1, 0, [])


def test_a_delivery_that_always_fails_is_dead_lettered_after_the_retries(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server([500])
    secret_url = hook.url("/hook?token=t0ps3cret").replace("//", "//alice:pa55@")
    notifier = notifier_for(webhooks=[{"url": secret_url}], retries=3)
    (record,) = publish(notifier, alert())

    announce(notifier)

    assert len(hook.received) == 4  # the first attempt and three retries
    assert hook.received[0].path == "/hook?token=t0ps3cret"
    assert hook.received[0].headers["authorization"] == "Basic YWxpY2U6cGE1NQ=="
    (letter,) = dead_letters(notifier)
    assert letter.reason == f"webhook {hook.url()} failed after 4 attempts: HTTP 500"
    assert (letter.component, letter.topic, letter.offset) == ("notifier", topics.ALERTS, 0)
    assert letter.original_value() == record.value
    assert (notifier.delivered, notifier.failed) == (0, 1)


@pytest.mark.parametrize("status", [400, 404])
def test_a_client_error_is_not_retried(
    status: int, hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server([status, 200])
    notifier = notifier_for(webhooks=[{"url": hook.url()}], retries=3)
    publish(notifier, alert())

    announce(notifier)

    assert len(hook.received) == 1
    (letter,) = dead_letters(notifier)
    assert letter.reason == f"webhook {hook.url()} failed after 1 attempt: HTTP {status}"


def test_an_unreachable_webhook_is_retried_then_dead_lettered(
    notifier_for: Callable[..., Notifier],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = notifier_for(webhooks=[{"url": f"http://127.0.0.1:{port}/hook"}], retries=1)
    publish(notifier, alert())

    announce(notifier)

    (letter,) = dead_letters(notifier)
    assert letter.reason.startswith(
        f"webhook http://127.0.0.1:{port}/hook failed after 2 attempts: connection error:"
    )


def test_undecodable_and_misplaced_messages_are_dead_lettered_and_the_rest_announced(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[{"url": hook.url()}])
    garbage = Record(topics.ALERTS, b"\x00not an event")
    misplaced = encode(topics.ALERTS, FeatureEvent(features={"x": 1.0}), source="/test")
    notifier.bus.publish([garbage, misplaced])
    publish(notifier, alert())

    assert announce(notifier) == 3

    undecodable, stray = dead_letters(notifier)
    assert undecodable.reason.startswith(f"no ce_* headers: {topics.ALERTS} carries meander")
    assert undecodable.original_value() == garbage.value
    assert stray.reason.startswith(f"a {FeatureEvent.type} event does not belong on")
    assert [request.data()["kind"] for request in hook.received] == ["data_drift"]
    assert notifier.consumer.committed(TopicPartition(topics.ALERTS, 0)) == 3


def test_events_reach_redis_pub_sub_and_the_log_streams(
    notifier_for: Callable[..., Notifier],
) -> None:
    notifier = notifier_for(webhooks=[])
    listener = notifier.store.pubsub(ignore_subscribe_messages=True)
    names = [channel("alerts"), channel("alerts", "fraud"), channel("models", "fraud")]
    listener.subscribe(*names)
    try:
        drift, promoted = publish(
            notifier, alert(), ModelEvent(action="promoted", stream="fraud", version=2)
        )
        assert announce(notifier) == 2
        heard = listen(listener, 3)
    finally:
        listener.close()

    assert sorted((m["channel"].decode(), orjson.loads(m["data"])["id"]) for m in heard) == [
        (channel("alerts"), ce_id(drift)),
        (channel("alerts", "fraud"), ce_id(drift)),
        (channel("models", "fraud"), ce_id(promoted)),
    ]
    ((_, entry),) = notifier.store.xrange(log_key("alerts"))
    assert (entry[b"id"].decode(), entry[b"kind"], entry[b"stream"]) == (
        ce_id(drift), b"data_drift", b"fraud"
    )  # fmt: skip
    assert orjson.loads(entry[b"event"])["data"]["statistic"] == "psi"
    ((_, entry),) = notifier.store.xrange(log_key("models"))
    assert entry[b"kind"] == b"promoted"
    assert notifier.published == 2


def logged_ids(notifier: Notifier, family: str = "alerts") -> list[str]:
    return [entry[b"id"].decode() for _, entry in notifier.store.xrange(log_key(family))]


def test_a_failed_commit_announces_nothing_twice_and_the_next_step_commits(
    hook_server: Callable[..., HookServer],
    notifier_for: Callable[..., Notifier],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[{"url": hook.url()}])
    records = publish(notifier, alert(stream="s0"), alert(stream="s1"))
    commit = notifier.consumer.commit
    refused: list[object] = []

    def refuse_once(*args: Any, **kwargs: Any) -> None:
        if not refused:
            refused.append(args)
            raise BusError("group rebalancing (as after a restart): the commit was refused")
        commit(*args, **kwargs)

    monkeypatch.setattr(notifier.consumer, "commit", refuse_once)
    assert notifier.step(0.1) == 2 and refused
    assert notifier.consumer.committed(TopicPartition(topics.ALERTS, 0)) is None
    assert announce(notifier) == 0  # nothing read again

    assert notifier.consumer.committed(TopicPartition(topics.ALERTS, 0)) == 2
    ids = [ce_id(record) for record in records]
    assert logged_ids(notifier) == ids
    assert [r.headers["x-meander-event-id"] for r in hook.received] == ids


def test_a_restarted_notifier_announces_nothing_twice(
    hook_server: Callable[..., HookServer], runtime_for: Callable[..., Runtime]
) -> None:
    hook = hook_server()
    runtime = runtime_for(webhooks=[{"url": hook.url()}])
    first = Notifier(runtime, backoff=0.01)
    records = publish(first, alert(stream="s0"), alert(stream="s1"))
    assert first.step(0.1) == 2
    assert first.webhooks.wait_idle(BOUND)
    # Killed here: its deliveries were made, nothing past them was committed yet.
    assert not first.consumer.committed(TopicPartition(topics.ALERTS, 0))
    first.consumer.close()

    second = Notifier(runtime, backoff=0.01)
    try:
        assert announce(second) == 2  # read again ...
    finally:
        second.close()
    ids = [ce_id(record) for record in records]
    assert logged_ids(second) == ids  # ... and told once
    assert [r.headers["x-meander-event-id"] for r in hook.received] == ids
    assert (first.published, second.published) == (2, 0)


def test_an_event_twice_on_the_topic_is_announced_once(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[{"url": hook.url()}])
    (record,) = publish(notifier, alert())
    notifier.bus.publish([record])  # a producer's retry, a replayed learner: the same id

    assert announce(notifier) == 2
    assert logged_ids(notifier) == [ce_id(record)]
    assert [r.headers["x-meander-event-id"] for r in hook.received] == [ce_id(record)]


def test_a_redis_outage_rewinds_so_nothing_is_committed_unannounced(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[{"url": hook.url()}])
    publish(notifier, alert())
    server = notifier.store.connection_pool.connection_kwargs["server"]
    server.connected = False  # fakeredis then fails every command as a lost connection would

    with pytest.raises(redis.ConnectionError):
        notifier.step(0.1)
    assert notifier.consumer.committed(TopicPartition(topics.ALERTS, 0)) is None

    server.connected = True
    assert announce(notifier) == 1
    assert len(hook.received) == 1 and notifier.published == 1


def test_a_full_outbox_stops_reading_until_it_drains(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server(held=True)
    notifier = notifier_for(webhooks=[{"url": hook.url()}], capacity=1)
    publish(notifier, *(alert(stream=f"s{n}") for n in range(3)))

    assert notifier.step(0.1) == 1
    hook.wait_for(1)  # the first is being delivered, the outbox is empty again
    assert notifier.step(0.1) == 1
    assert notifier.step(0.1) == 0  # the outbox holds the second: the third stays unread
    hook.hold.set()
    assert notifier.flush(BOUND)

    assert announce(notifier) == 1
    assert [request.data()["stream"] for request in hook.received] == ["s0", "s1", "s2"]


def test_close_delivers_what_it_can_and_the_next_notifier_makes_the_rest(
    hook_server: Callable[..., HookServer], runtime_for: Callable[..., Runtime]
) -> None:
    quick, stuck = hook_server(), hook_server(held=True)
    runtime = runtime_for(
        webhooks=[{"url": quick.url()}, {"url": stuck.url()}], retries=3, timeout_seconds=0.5
    )
    notifier = Notifier(runtime, backoff=0.01, close_timeout=0.2)
    records = publish(notifier, alert(), alert())
    while notifier.step(0.1):
        pass
    quick.wait_for(2)
    stuck.wait_for(1)  # the first is under way, the second waits in the outbox

    notifier.close()
    assert len(quick.received) == 2 and not dead_letters(notifier)  # nothing given up on

    stuck.hold.set()
    successor = Notifier(runtime, backoff=0.01)
    try:
        announce(successor)
    finally:
        successor.close()
    assert len(quick.received) == 2  # not told twice
    made = [r.headers["x-meander-event-id"] for r in stuck.received[1:]]
    assert made == [ce_id(record) for record in records]  # the rest, each once
    assert successor.published == 0  # Redis was told once, by the first


PRIVATE_OK = {"allow_private_webhooks": True}  # the hook servers listen on loopback


def test_a_subscription_made_while_running_gets_the_next_alert_signed_with_its_secret(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[], service=PRIVATE_OK)
    assert notifier.step(0.0) == 0  # running, with no subscription yet
    subscriptions = Subscriptions(notifier.store)
    made, secret = subscriptions.create(hook.url(), Filters(streams=["fraud"]))
    (record,) = publish(notifier, alert())

    announce(notifier)

    (request,) = hook.wait_for(1)
    headers = request.headers
    assert verify(secret.encode(), request.body, headers["x-meander-timestamp"],
                  headers["x-meander-signature"])  # fmt: skip
    assert headers["x-meander-event-id"] == ce_id(record)
    (delivery,) = subscriptions.deliveries(made.id)
    assert (delivery.event_id, delivery.status, delivery.attempts, delivery.http_status) == (
        ce_id(record), "delivered", 1, 200
    )  # fmt: skip
    assert delivery.last_error is None


def test_a_failing_subscription_keeps_a_failed_record_and_a_dead_letter(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server([500])
    notifier = notifier_for(webhooks=[], retries=2, service=PRIVATE_OK)
    subscriptions = Subscriptions(notifier.store)
    made, _ = subscriptions.create(hook.url())
    (record,) = publish(notifier, alert())

    announce(notifier)

    assert len(hook.received) == 3  # the first attempt and two retries
    (delivery,) = subscriptions.deliveries(made.id, status="failed")
    assert (delivery.event_id, delivery.attempts, delivery.http_status, delivery.last_error) == (
        ce_id(record), 3, 500, "HTTP 500"
    )  # fmt: skip
    assert subscriptions.deliveries(made.id, status="delivered") == []
    (letter,) = dead_letters(notifier)
    assert letter.reason == f"webhook {hook.url()} failed after 3 attempts: HTTP 500"


def test_changes_to_subscriptions_take_effect_at_the_next_step(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[], service=PRIVATE_OK)
    subscriptions = Subscriptions(notifier.store)
    kept, old_secret = subscriptions.create(hook.url("/kept"))
    gone, _ = subscriptions.create(hook.url("/gone"))
    publish(notifier, alert(stream="first"))
    announce(notifier)

    _, new_secret = subscriptions.update(
        kept.id, {"filters": Filters(min_severity="critical")}, rotate_secret=True
    )
    subscriptions.delete(gone.id)
    publish(notifier, alert(stream="second"), alert(stream="third", severity="critical"))
    announce(notifier)

    got = [(r.path, r.data()["stream"]) for r in hook.received]
    assert sorted(got) == [("/gone", "first"), ("/kept", "first"), ("/kept", "third")]
    last = hook.received[-1].headers
    assert verify(new_secret.encode(), hook.received[-1].body, last["x-meander-timestamp"],
                  last["x-meander-signature"])  # fmt: skip
    assert new_secret != old_secret
    assert [d.event_id for d in subscriptions.deliveries(kept.id)] == [
        r.headers["x-meander-event-id"] for r in reversed(hook.received) if r.path == "/kept"
    ]


def test_an_alertmanager_subscription_gets_version_4_and_no_model_events(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[], service=PRIVATE_OK)
    made, secret = Subscriptions(notifier.store).create(hook.url(), format="alertmanager")
    publish(notifier, ModelEvent(action="promoted", stream="fraud"), alert(kind="concept_drift"))

    announce(notifier)

    (request,) = hook.received
    body = orjson.loads(request.body)
    assert (body["version"], body["receiver"], body["status"]) == ("4", made.id, "firing")
    assert body["alerts"][0]["labels"]["alertname"] == "ConceptDrift"
    assert request.headers["content-type"] == "application/json"
    assert verify(secret.encode(), request.body, request.headers["x-meander-timestamp"],
                  request.headers["x-meander-signature"])  # fmt: skip


def test_a_private_target_is_refused_at_delivery_without_the_allow_flag(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[], retries=3)  # private targets not allowed
    subscriptions = Subscriptions(notifier.store)
    made, _ = subscriptions.create(hook.url())  # as if its name had resolved elsewhere before
    publish(notifier, alert())

    announce(notifier)

    assert hook.received == []
    (delivery,) = subscriptions.deliveries(made.id)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error is not None
    assert "resolves to 127.0.0.1, a loopback address" in delivery.last_error


def test_a_delivery_record_waits_out_a_redis_outage(
    hook_server: Callable[..., HookServer], notifier_for: Callable[..., Notifier]
) -> None:
    hook = hook_server()
    notifier = notifier_for(webhooks=[], service=PRIVATE_OK)
    subscriptions = Subscriptions(notifier.store)
    made, _ = subscriptions.create(hook.url())
    (record,) = publish(notifier, alert())
    assert notifier.step(0.1) == 1
    hook.wait_for(1)
    server = notifier.store.connection_pool.connection_kwargs["server"]
    server.connected = False

    with pytest.raises(redis.ConnectionError):
        notifier.flush(BOUND)  # the delivery ended; its record cannot be written yet

    server.connected = True
    assert notifier.flush(BOUND)
    assert [d.event_id for d in subscriptions.deliveries(made.id)] == [ce_id(record)]


def test_notifiers_in_one_group_deliver_each_event_once(
    hook_server: Callable[..., HookServer], runtime_for: Callable[..., Runtime]
) -> None:
    hook = hook_server()
    runtime = runtime_for(webhooks=[], service=PRIVATE_OK)
    notifiers = [Notifier(runtime, backoff=0.01) for _ in range(2)]
    Subscriptions(runtime.store).create(hook.url())
    events = [alert(stream=f"s{n}") for n in range(6)]
    events += [ModelEvent(action="promoted", stream=f"s{n}") for n in range(6)]
    records = publish(notifiers[0], *events)
    try:
        handled = 0
        while count := sum(n.step(0.05) for n in notifiers):
            handled += count
        assert all(n.flush(BOUND) for n in notifiers)
    finally:
        for notifier in notifiers:
            notifier.close()

    assert handled == len(records)
    ids = [r.headers["x-meander-event-id"] for r in hook.received]
    assert sorted(ids) == sorted(ce_id(record) for record in records)


@pytest.mark.integration
def test_the_notifier_on_kafka_and_redis(
    kafka_bootstrap: str, redis_url: str, hook_server: Callable[..., HookServer]
) -> None:
    stream = f"notify{uuid.uuid4().hex[:8]}"
    hook = hook_server([503, 200])
    webhook = {"url": hook.url(), "streams": [stream], "secret": "k"}
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        notifier={"webhooks": [webhook], "retries": 2},
    )
    with Runtime.open(settings) as runtime:
        notifier = Notifier(runtime, group=f"notifier-{stream}", backoff=0.01)
        listener = runtime.store.pubsub(ignore_subscribe_messages=True)
        listener.subscribe(channel("models", stream))
        try:
            (record,) = publish(notifier, ModelEvent(action="rolled_back", stream=stream))
            heard: list[dict[str, Any]] = []
            deadline = time.monotonic() + BOUND
            while not heard and time.monotonic() < deadline:
                notifier.step(1.0)
                message = listener.get_message(ignore_subscribe_messages=True, timeout=0.5)
                heard += [message] if message else []
            assert notifier.flush(BOUND)
        finally:
            listener.close()
            notifier.close()

        assert [orjson.loads(m["data"])["id"] for m in heard] == [ce_id(record)]
        first_try, second_try = hook.received  # a 503, then a 200
        assert first_try.body == second_try.body
        signed = second_try.headers["x-meander-timestamp"].encode() + b"." + second_try.body
        expected = hmac.new(b"k", signed, hashlib.sha256).hexdigest()
        assert second_try.headers["x-meander-signature"] == f"sha256={expected}"
        assert second_try.data()["action"] == "rolled_back"
        logged = runtime.store.xrevrange(log_key("models"), count=1_000)
        assert ce_id(record).encode() in [entry[b"id"] for _, entry in logged]


def counted() -> dict[str, float]:
    def get(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return {
        "delivered": get("meander_webhook_deliveries_total", outcome="delivered"),
        "failed": get("meander_webhook_deliveries_total", outcome="failed"),
        "dead": get("meander_deadletters_total", component="notifier", reason="delivery_failed"),
        # No stream is configured here: what an alert says its stream is is no label value.
        "read": get("meander_events_consumed_total", component="notifier", stream=""),
    }


def test_deliveries_are_counted_by_outcome_and_a_failure_logged_with_its_event(
    hook_server: Callable[..., HookServer],
    notifier_for: Callable[..., Notifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    good, bad = hook_server([200]), hook_server([500])
    notifier = notifier_for(webhooks=[{"url": good.url()}, {"url": bad.url()}], retries=0)
    before = counted()
    records = publish(notifier, alert(stream="fraud"), alert(stream="elsewhere"))

    announce(notifier)

    after = counted()
    assert {k: after[k] - before[k] for k in after} == {
        "delivered": 2,
        "failed": 2,
        "dead": 2,
        "read": 2,
    }
    failures = [r for r in caplog.records if r.name == "meander.consumers.notifier.deliveries"]
    assert {(r.__dict__["stream"], r.__dict__["event_id"]) for r in failures} == {
        ("fraud", ce_id(records[0])),
        ("elsewhere", ce_id(records[1])),
    }
