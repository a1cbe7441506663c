"""Records that retention deleted before a consumer read them are counted and logged.

A consumer whose position fell below its partition's log start is moved to the log start by
its client (``auto_offset_reset = earliest``), on both clients, and nothing said so: a learner
or a predictor down for longer than its topics' retention lost records and no one knew. Here a
group commits 3 of 10 records, then the first 10 are deleted, and a member of the group and a
reader that seeks to offset 3 (as a learner resumes from its checkpoint) each count the deleted
records they did not read.

The records are deleted as retention would delete them, by moving the partition's log start
(DeleteRecords, at once): a broker's own retention runs on a timer (every 5 minutes by default)
and a test broker applying it often deletes what other tests write with old timestamps.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from prometheus_client import REGISTRY

from meander.bus import Record, TopicPartition

pytestmark = pytest.mark.integration


def delete_before(bootstrap: str, partition: TopicPartition, offset: int) -> None:
    """What retention does to the records of ``partition`` below ``offset``."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_records({KafkaTopicPartition(*partition): offset})
    finally:
        admin.close()


def deleted(topic: str, group: str) -> float:
    labels = {"topic": topic, "group": group}
    return REGISTRY.get_sample_value("meander_records_deleted_unread_total", labels) or 0.0


def read(consumer: object, count: int, seconds: float = 20.0) -> list[object]:
    found: list[object] = []
    deadline = time.monotonic() + seconds
    while len(found) < count and time.monotonic() < deadline:
        found += consumer.consume(timeout=0.5)  # type: ignore[attr-defined]
    return found


def log_start(bootstrap: str, partition: TopicPartition) -> int:
    """Asked aside, by a client of its own: a reader of the bus reading from 0 would count."""
    asking = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return int(asking.beginning_offsets([KafkaTopicPartition(*partition)]).popitem()[1])
    finally:
        asking.close()


@pytest.mark.parametrize("client", ["kafka", "confluent"])
def test_records_deleted_before_they_were_read_are_counted(
    client: str, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    if client == "kafka":
        from meander.bus.kafka import KafkaBus as Cluster
    else:
        pytest.importorskip("confluent_kafka")
        from meander.bus.confluent import ConfluentBus as Cluster  # type: ignore[assignment]
    topic, group = f"test.{uuid.uuid4().hex[:12]}", f"group-{uuid.uuid4().hex[:12]}"
    partition = TopicPartition(topic, 0)
    with Cluster(kafka_bootstrap, timeout=10) as bus:
        bus.create_topics({topic: 1})
        bus.publish([Record(topic, b"%d" % i) for i in range(10)])
        member = bus.subscribe([topic], group)
        assert len(read(member, 10)) == 10
        member.commit({partition: 3})
        member.close()
        delete_before(kafka_bootstrap, partition, 10)
        assert log_start(kafka_bootstrap, partition) == 10
        bus.publish([Record(topic, b"after")])

        member = bus.subscribe([topic], group)
        first, *_ = read(member, 1)
        member.close()
        reader = bus.assign([partition])
        reader.seek(partition, 3)
        again, *_ = read(reader, 1)
        reader.close()

    assert first.offset == again.offset == 10  # type: ignore[attr-defined]
    assert deleted(topic, group) == deleted(topic, "") == 7
    assert "7 records (offsets 3 to 9) were deleted" in caplog.text
