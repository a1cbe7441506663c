"""The service as a user meets it, on real Kafka and Redis under a real uvicorn server: an
event published over HTTP is scored by the loop running in the service, and its prediction
arrives over Server-Sent Events, over WebSocket and by GET; then its label is accepted."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from websockets.sync.client import connect

from meander import topics
from meander.bus import TopicPartition, connect_bus
from meander.config import Settings
from meander.producers.synthetic import synthetic
from meander.services.live import format_cursor
from tests.services.conftest import Serve

pytestmark = pytest.mark.integration

BOUND = 60.0  # seconds any wait may take; never reached when the test passes


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + BOUND
    while not (found := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return found


def cursor_now(settings: Settings, topic: str) -> str:
    """Where the predictions topic ends now, as a live feed's cursor."""
    with connect_bus(settings) as bus:
        parts = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
        with bus.assign(parts) as consumer:
            ends = consumer.end_offsets(parts)
    return format_cursor({p.partition: offset for p, offset in ends.items()})


def test_a_published_event_is_predicted_live_and_by_id(
    kafka_bootstrap: str, redis_url: str, serve: Serve
) -> None:
    source = synthetic("sea", seed=3)
    stream = source.stream_config(
        f"e2e{uuid.uuid4().hex[:8]}", model="tree.HoeffdingTreeClassifier"
    )
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key="end-to-end test key, long enough to sign",
        streams=[stream],
        service={"anonymous_scopes": ["publish", "read"], "components": ["learner", "predictor"]},
    )
    with connect_bus(settings) as bus:  # as `meander topics create` does before a deployment
        bus.create_topics(topics.layout([stream]))
    base = serve(settings)
    api = f"{base}/v1/streams/{stream.name}"
    start = cursor_now(settings, topics.predictions(stream.name))
    over_sse: list[dict[str, Any]] = []
    over_ws: list[dict[str, Any]] = []

    def follow_sse() -> None:
        headers = {"Last-Event-ID": start}
        with httpx.stream("GET", f"{api}/predictions/live", headers=headers, timeout=BOUND) as sse:
            for line in sse.iter_lines():
                if line.startswith("data:"):
                    over_sse.append(json.loads(line[5:]))
                    return

    def follow_ws() -> None:
        ws_url = f"{api.replace('http', 'ws', 1)}/predictions/ws?cursor={start}&role=champion"
        with connect(ws_url, open_timeout=BOUND) as socket:
            over_ws.append(json.loads(socket.recv(timeout=BOUND)))

    readers = [threading.Thread(target=f, daemon=True) for f in (follow_sse, follow_ws)]
    for reader in readers:
        reader.start()
    sample = next(iter(source.samples(1)))
    event_id = f"evt-{uuid.uuid4().hex[:8]}"
    published = httpx.post(f"{api}/events", json={"id": event_id, "features": sample.features})
    assert published.status_code == 202, published.text
    for reader in readers:
        reader.join(BOUND)

    assert [p["event_id"] for p in over_sse] == [event_id]
    assert [p["event_id"] for p in over_ws] == [event_id]
    assert over_ws[0]["role"] == "champion"

    def by_id() -> dict[str, Any] | None:
        answer = httpx.get(f"{api}/predictions/{event_id}")
        return answer.json() if answer.status_code == 200 else None

    found = wait_for(by_id, "the prediction by id")
    assert found["champion"]["event_id"] == event_id
    assert found["champion"]["prediction"] == over_sse[0]["prediction"]

    label = httpx.post(f"{api}/feedback", json={"event_id": event_id, "label": sample.label})
    assert label.status_code == 202, label.text
