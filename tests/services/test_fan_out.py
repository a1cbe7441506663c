"""Several service processes behind a load balancer: each streams every prediction to its own
clients, while each webhook delivery happens once, not once per process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from kafka import KafkaAdminClient

from meander import topics
from meander.bus import TopicPartition, connect_bus
from meander.config import Settings, StreamConfig
from meander.events import Alert, Prediction, encode
from meander.services.live import format_cursor
from tests.conftest import HookServer
from tests.services.conftest import Serve

pytestmark = pytest.mark.integration

BOUND = 60.0  # seconds any wait may take; never reached when the test passes


def test_every_process_streams_every_prediction_and_a_webhook_gets_each_alert_once(
    kafka_bootstrap: str,
    redis_url: str,
    serve: Serve,
    hook_server: Callable[..., HookServer],
) -> None:
    stream = StreamConfig(name=f"fan{uuid.uuid4().hex[:8]}", task="binary", features={"x": {}})
    group = f"test-fan-out-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key="fan-out test key, long enough to sign",
        streams=[stream],
        notifier={"group": group},
        service={
            "anonymous_scopes": ["read", "admin"],
            "allow_private_webhooks": True,  # the receiver listens on loopback
            "components": ["notifier"],  # in both processes, one consumer group
        },
    )
    predictions = topics.predictions(stream.name)
    with connect_bus(settings) as bus:
        bus.create_topics(topics.layout([stream]))
        parts = [TopicPartition(predictions, p) for p in range(bus.partitions(predictions))]
        with bus.assign(parts) as consumer:
            ends = consumer.end_offsets(parts)
    start = format_cursor({p.partition: offset for p, offset in ends.items()})
    processes = [serve(settings), serve(settings)]
    hook = hook_server()
    made = httpx.post(
        f"{processes[0]}/v1/subscriptions",
        json={"url": hook.url(), "filters": {"streams": [stream.name]}},
    )
    assert made.status_code == 201, made.text

    seen: list[list[str]] = [[], []]

    def follow(index: int) -> None:
        url = f"{processes[index]}/v1/streams/{stream.name}/predictions/live"
        with httpx.stream("GET", url, headers={"Last-Event-ID": start}, timeout=BOUND) as sse:
            for line in sse.iter_lines():
                if line.startswith("data:"):
                    seen[index].append(json.loads(line[5:])["event_id"])
                    if len(seen[index]) == 3:
                        return

    clients = [threading.Thread(target=follow, args=(i,), daemon=True) for i in (0, 1)]
    for client in clients:
        client.start()
    ids = [f"evt-{n}" for n in range(3)]
    alert = Alert(
        kind="concept_drift", stream=stream.name, severity="critical", statistic="adwin", value=0.4
    )
    with connect_bus(settings) as bus:
        bus.publish(
            [
                encode(
                    predictions,
                    Prediction(
                        event_id=i, model=stream.name, version=1, prediction=True, latency_ms=0.1
                    ),
                    source="/meander/predictor",
                )
                for i in ids
            ]
            + [encode(topics.ALERTS, alert, source="/meander/learner")]
        )
        alerts_end = _end(bus, topics.ALERTS)
    for client in clients:
        client.join(BOUND)
    assert sorted(seen[0]) == ids and sorted(seen[1]) == ids

    hook.wait_for(1)
    # Once the group committed past the alert, no notifier of either process can read it again.
    _wait_for(lambda: _committed(kafka_bootstrap, group) >= alerts_end, "the group's commit")
    assert len(hook.received) == 1


def _end(bus: Any, topic: str) -> int:
    part = TopicPartition(topic, 0)
    with bus.assign([part]) as consumer:
        return int(consumer.end_offsets([part])[part])


def _committed(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return max((o.offset for tp, o in offsets.items() if tp.topic == topics.ALERTS), default=-1)


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)
