"""On Kafka, a group member stepped without waiting always finishes its joins.

kafka-python 3.0.12 leaves a join that a poll with a short timeout began in flight, and a later
poll awaits it only while ``need_rejoin()`` holds; the leader's own assignment, made inside the
join, can make it false (here: partitions were added, so the metadata snapshot changed). The
member then stays "rebalancing" for good: records still come (its old partitions stay
assigned) but every commit is refused. The join is started here exactly as kafka-python starts
it inside any poll, with the step's own work after it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewPartitions

from meander.bus import Record, TopicPartition
from meander.bus.kafka import KafkaBus
from meander.bus.kafka_consumer import KafkaGroupConsumer
from meander.exceptions import BusError

pytestmark = pytest.mark.integration


@pytest.fixture
def bus(kafka_bootstrap: str) -> Iterator[KafkaBus]:
    # Metadata refreshed every half second, so added partitions are seen at once.
    with KafkaBus(kafka_bootstrap, consumer_options={"metadata_max_age_ms": 500}) as backend:
        yield backend


def test_a_join_a_poll_began_and_left_is_finished_by_the_next_consume(
    bus: KafkaBus, kafka_bootstrap: str
) -> None:
    topic = f"test.join.{uuid.uuid4().hex[:10]}"
    bus.create_topics({topic: 1})
    consumer = bus.subscribe([topic], f"group-{uuid.uuid4().hex[:10]}")
    assert isinstance(consumer, KafkaGroupConsumer)
    kafka_consumer = consumer._consumer
    try:
        assert _commits(bus, consumer, topic, seconds=15) > 0
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.create_partitions({topic: NewPartitions(3)})
        finally:
            admin.close()
        deadline = time.monotonic() + 15
        while kafka_consumer.partitions_for_topic(topic) != {0, 1, 2}:
            assert time.monotonic() < deadline, "the consumer never saw the new partitions"
            time.sleep(0.05)
        kafka_consumer.poll(timeout_ms=0)  # the rejoin starts in here, and this poll gives up
        time.sleep(0.5)  # the rest of the step: longer than a JoinGroup round trip

        assert _commits(bus, consumer, topic, seconds=15) > 0
        assert consumer.assignment() == {TopicPartition(topic, p) for p in range(3)}
    finally:
        consumer.close()


def _commits(bus: KafkaBus, consumer: KafkaGroupConsumer, topic: str, *, seconds: float) -> int:
    """Step as `meander run` steps a busy component (consume without waiting, commit) while
    records arrive, until a commit succeeds after one was refused or ``seconds`` pass; returns
    how many commits succeeded in the last second stepped."""
    deadline = time.monotonic() + seconds
    succeeded: list[float] = []
    while time.monotonic() < deadline:
        bus.publish([Record(topic, b"x", key=str(i).encode()) for i in range(10)])
        if consumer.consume(100, 0.0):
            try:
                consumer.commit()
            except BusError:
                succeeded.clear()  # refused: only an unbroken run of commits counts
            else:
                succeeded.append(time.monotonic())
        if succeeded and succeeded[-1] - succeeded[0] >= 1.0:
            return len(succeeded)
        time.sleep(0.005)
    return 0
