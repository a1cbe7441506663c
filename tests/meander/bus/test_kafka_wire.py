"""On a real broker: what meander's Kafka bus reads is what kafka-python reads.

The bus reads fetched batches straight into Messages; these tests hold it to kafka-python's
own consumer on topics that exercise the rest of the format: compressed batches, broker-stamped
times (LogAppendTime), tombstones, and transactions read with ``read_committed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import NewTopic

from meander.bus import Message, Record, TopicPartition
from meander.bus.kafka import KafkaBus
from meander.bus.kafka_batches import append_batch, encode_batches

pytestmark = pytest.mark.integration


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    def make(**configs: str) -> str:
        name = f"test.wire.{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
        return name

    yield make
    admin.close()


def _read_with_kafka_python(bootstrap: str, topic: str, **options: object) -> list[Message]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    part = KafkaTopicPartition(topic, 0)
    consumer.assign([part])
    consumer.seek_to_beginning(part)
    end = consumer.end_offsets([part])[part]
    found: list[Message] = []
    while consumer.position(part) < end:
        for records in consumer.poll(timeout_ms=1_000).values():
            found += [
                Message(topic, 0, r.offset, r.key, r.value, tuple(r.headers), r.timestamp)
                for r in records
            ]
    consumer.close()
    return found


def _read_with_the_bus(bus: KafkaBus, topic: str) -> list[Message]:
    part = TopicPartition(topic, 0)
    with bus.assign([part]) as consumer:
        end = consumer.end_offsets([part])[part]
        found: list[Message] = []
        while consumer.position(part) < end:
            found += consumer.consume(1_000, 1.0)
    return found


def test_compressed_and_broker_stamped_batches_read_as_kafka_python_reads_them(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(**{"message.timestamp.type": "LogAppendTime"})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="gzip")
    for i in range(200):
        value = None if i % 50 == 0 else b"value %d " % i * (1 + i % 40)
        producer.send(topic, value=value, key=b"k%d" % i, headers=[("h", b"%d" % i)])
    producer.flush()
    producer.close()
    with KafkaBus(kafka_bootstrap) as bus:
        bus.publish([Record(topic, b"bus %d" % i, headers=(("n", b"1"),)) for i in range(50)])
        read = _read_with_the_bus(bus, topic)
    assert len(read) == 250
    assert read == _read_with_kafka_python(kafka_bootstrap, topic)
    assert read[0].value is None and read[1].value == b"value 1 value 1 "


def _send_each(producer: KafkaProducer, topic: str, values: list[bytes]) -> None:
    for value in values:
        producer.send(topic, value=value, partition=0)


def _append_whole(producer: KafkaProducer, topic: str, values: list[bytes]) -> None:
    records = [Record(topic, value, timestamp_ms=1_000) for value in values]
    append_batch(producer, topic, 0, encode_batches(records, 1 << 20)[0], records, 1 << 20)
    producer._sender.wakeup()


@pytest.mark.parametrize("write", [_send_each, _append_whole], ids=["send", "whole-batch"])
def test_only_committed_transactions_are_read_with_read_committed(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    write: Callable[[KafkaProducer, str, list[bytes]], None],
) -> None:
    topic = new_topic()
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"wire-{uuid.uuid4().hex[:8]}"
    )
    producer.init_transactions()
    producer.partitions_for(topic)
    for outcome in ("commit", "abort", "commit"):
        producer.begin_transaction()
        write(producer, topic, [f"{outcome} {n}".encode() for n in range(2)])
        producer.flush()  # in the log before the abort, so that readers must skip them
        if outcome == "commit":
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()
    with KafkaBus(kafka_bootstrap, consumer_options={"isolation_level": "read_committed"}) as bus:
        read = _read_with_the_bus(bus, topic)
    assert [m.value for m in read] == [b"commit 0", b"commit 1"] * 2
    assert [m.offset for m in read] == [0, 1, 6, 7]  # 2: a commit marker, 3-4 aborted, 5 its marker
    committed = _read_with_kafka_python(kafka_bootstrap, topic, isolation_level="read_committed")
    assert read == committed
    everything = _read_with_kafka_python(kafka_bootstrap, topic)
    assert [m.value for m in everything] == [
        f"{outcome} {n}".encode() for outcome in ("commit", "abort", "commit") for n in range(2)
    ]
