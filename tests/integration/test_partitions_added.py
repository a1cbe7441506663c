"""Partitions added to a stream's topics while it runs are read within seconds, on either client.

``kafka-topics --alter --partitions`` on a running system: the predictor's group must rebalance
onto the new partitions of ``S.events``, the learner's readers (outside any group) must take in
those of ``S.feedback`` and ``S.events``, a live feed of ``S.predictions`` those of its topic,
and the bus must write to them, keys spread over them too. The clients refreshed their metadata
every five minutes, and the learner and the live feeds counted partitions once, at their start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing

import pytest
from kafka.admin import KafkaAdminClient, NewPartitions

from meander import topics
from meander.bus import Bus, Record, TopicPartition
from meander.bus.base import Headers
from meander.config import Settings, StreamConfig
from meander.consumers.learner.learner_inputs import LearnerInputs
from meander.events import Alert, encode
from meander.exceptions import BusError
from meander.runtime import Runtime
from meander.services.live import Delivery, LiveFeed

pytestmark = pytest.mark.integration

# Two metadata refreshes, a rebalance and a fetch fit in here; five minutes do not.
WITHIN_SECONDS = 15.0


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def runtime(
    request: pytest.FixtureRequest, real_settings: Callable[..., Settings], stream_name: str
) -> Iterator[Runtime]:
    stream = StreamConfig(name=stream_name, task="binary", features={"x": "numeric"}, partitions=1)
    settings = real_settings(stream).model_copy(update={"kafka_client": request.param})
    with Runtime.open(settings) as opened:
        yield opened


def test_the_predictors_group_reads_partitions_added(runtime: Runtime, stream_name: str) -> None:
    events = topics.events(stream_name)
    consumer = runtime.bus.subscribe([events], f"meander-predictor-{stream_name}")
    with consumer:
        _until(lambda: consumer.consume(10, 0.2) or consumer.assignment(), "joined its group")
        _add_partitions(runtime, events, 3)
        _publish_to(runtime.bus, TopicPartition(events, 2))

        def read_new() -> bool:
            return any(m.partition == 2 for m in consumer.consume(10, 0.2))

        _until(read_new, "read the new partition")

    def keys_spread() -> bool:
        keyed = [Record(events, b"{}", key=f"k{i}".encode()) for i in range(30)]
        return any(d.partition == 2 for d in runtime.bus.publish(keyed))

    _until(keys_spread, "placed a key on the new partition")  # keys spread over all three


def test_the_learners_readers_read_partitions_added(runtime: Runtime, stream_name: str) -> None:
    feedback, events = topics.feedback(stream_name), topics.events(stream_name)
    inputs = LearnerInputs(runtime, runtime.settings.stream(stream_name), {})
    try:
        _add_partitions(runtime, feedback, 2)
        _add_partitions(runtime, events, 2)
        _publish_to(runtime.bus, TopicPartition(feedback, 1))
        _publish_to(runtime.bus, TopicPartition(events, 1))

        _until(lambda: any(m.partition == 1 for m in inputs.feedback.take(10)), "read a label")
        _until(lambda: any(m.partition == 1 for m in inputs.caught_up()[1]), "read an event")
        assert TopicPartition(feedback, 1) in inputs.offsets()
    finally:
        inputs.close()


def test_a_live_feed_reads_partitions_added(runtime: Runtime, stream_name: str) -> None:
    predictions = topics.predictions(stream_name)
    feed = LiveFeed.open(runtime.bus, predictions, lambda envelope: {"id": envelope.id})
    try:
        _add_partitions(runtime, predictions, 2)
        alert = Alert(
            kind="data_drift", stream=stream_name, severity="info", statistic="psi", value=1
        )
        record = encode(predictions, alert, source="/test", event_id="on-the-new-partition")
        _publish_to(runtime.bus, TopicPartition(predictions, 1), record.value, record.headers)
        first = asyncio.run(asyncio.wait_for(_first(feed), WITHIN_SECONDS))
        assert first == Delivery("0:0,1:1", {"id": "on-the-new-partition"})
    finally:
        feed.close()


async def _first(feed: LiveFeed) -> object:
    async with aclosing(feed.deliveries()) as deliveries:
        async for item in deliveries:
            return item
    return None


def _add_partitions(runtime: Runtime, topic: str, count: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=runtime.settings.kafka_bootstrap)
    try:
        admin.create_partitions({topic: NewPartitions(count)})
    finally:
        admin.close()


def _publish_to(
    bus: Bus, partition: TopicPartition, value: bytes = b"{}", headers: Headers = ()
) -> None:
    """Publish a record to ``partition`` once the bus's producer knows it exists."""
    record = Record(partition.topic, value, headers=headers, partition=partition.partition)

    def published() -> bool:
        try:
            bus.publish([record])
        except BusError:
            return False  # its metadata does not show the partition yet
        return True

    _until(published, f"published to partition {partition.partition}")


def _until(done: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WITHIN_SECONDS
    while not done():
        assert time.monotonic() < deadline, f"not {what} within {WITHIN_SECONDS:g} s"
