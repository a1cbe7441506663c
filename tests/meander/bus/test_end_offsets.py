"""On Kafka, a consumer read to its end answers end offsets without waiting for its own fetch.

A consumer at the end of its partitions has a fetch open on the broker, held for up to the
fetch wait when no record comes. The broker answers one connection's requests in order, so an
offsets request on that connection would wait for the fetch: a learner asks for the ends of its
tails every step. Here the fetch wait is 3 s, so a request that queued would take up to 3 s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from meander.bus import Bus, Record, TopicPartition

pytestmark = pytest.mark.integration

FETCH_WAIT_MS = 3_000


@pytest.fixture(params=["kafka", "confluent"])
def bus(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[Bus]:
    if request.param == "kafka":
        from meander.bus.kafka import KafkaBus

        backend: Bus = KafkaBus(
            kafka_bootstrap, consumer_options={"fetch_max_wait_ms": FETCH_WAIT_MS}
        )
    else:
        from meander.bus.confluent import ConfluentBus

        backend = ConfluentBus(
            kafka_bootstrap, consumer_options={"fetch.wait.max.ms": FETCH_WAIT_MS}
        )
    with backend:
        yield backend


def test_end_offsets_do_not_queue_behind_an_open_fetch(bus: Bus) -> None:
    topic = f"test.ends.{uuid.uuid4().hex[:10]}"
    bus.create_topics({topic: 2})
    bus.publish([Record(topic, b"x", partition=p) for p in (0, 1)])
    partitions = [TopicPartition(topic, p) for p in (0, 1)]
    consumer = bus.assign(partitions)
    try:
        read = 0
        deadline = time.monotonic() + 30
        while read < 2 and time.monotonic() < deadline:
            read += len(consumer.consume(10, 0.5))
        assert read == 2
        consumer.consume(10, 0.2)  # at the end: the next fetch waits on the broker
        took = []
        for _ in range(5):
            started = time.monotonic()
            assert consumer.end_offsets(partitions) == dict.fromkeys(partitions, 1)
            took.append(time.monotonic() - started)
            consumer.consume(10, 0.0)
        assert max(took) < FETCH_WAIT_MS / 3_000, took
    finally:
        consumer.close()
