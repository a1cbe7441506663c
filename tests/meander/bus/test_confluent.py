"""The confluent-kafka bus holds a bounded amount of records fetched ahead of its reader.

librdkafka fetches ahead into a local queue, by default up to 64 MiB: a predictor started on a
backlog grew by that much at once. Its statistics say how much each partition's queue holds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from meander.bus import Record, TopicPartition

pytestmark = pytest.mark.integration

pytest.importorskip("confluent_kafka")

RECORDS = 24_000
RECORD_BYTES = 1_000  # 24 MB on the topic: three times the bound


@pytest.fixture
def queued() -> list[int]:
    """The bytes queued ahead of the reader, over its partitions, at each statistics report."""
    return []


@pytest.fixture
def bus(kafka_bootstrap: str, queued: list[int]) -> Iterator[Any]:
    from meander.bus.confluent import ConfluentBus

    def report(text: str) -> None:
        topics = json.loads(text).get("topics", {})
        sizes = [
            part.get("fetchq_size", 0)
            for topic in topics.values()
            for name, part in topic.get("partitions", {}).items()
            if name != "-1"
        ]
        queued.append(sum(sizes))

    options = {"statistics.interval.ms": 100, "stats_cb": report}
    with ConfluentBus(kafka_bootstrap, timeout=10, consumer_options=options) as backend:
        yield backend


def test_records_fetched_ahead_stay_within_the_bound(bus: Any, queued: list[int]) -> None:
    from meander.bus.confluent import QUEUED_BYTES

    topic = f"test.queued.{uuid.uuid4().hex[:10]}"
    bus.create_topics({topic: 1})
    value = b"x" * RECORD_BYTES
    for start in range(0, RECORDS, 4_000):
        bus.publish([Record(topic, value, partition=0) for _ in range(start, start + 4_000)])
    consumer = bus.assign([TopicPartition(topic, 0)])
    try:
        deadline = time.monotonic() + 30
        while not consumer.consume(1, 0.5) and time.monotonic() < deadline:
            pass
        # Read next to nothing: librdkafka fills its queue as far as it may, and reports it
        # (its callbacks are served by the reads, a record each tenth of a second here).
        settle = time.monotonic() + 2.0
        while time.monotonic() < settle:
            time.sleep(0.1)
            consumer.consume(1, 0.0)
        assert max(queued) > 0
        fetch = 1_048_576  # max.partition.fetch.bytes: the bound may be overshot by one fetch
        assert max(queued) <= QUEUED_BYTES + fetch, max(queued)
    finally:
        consumer.close()
