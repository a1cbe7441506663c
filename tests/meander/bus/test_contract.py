"""The bus contract, once, for every backend (the embedded log and a real Kafka broker)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from meander.bus import Bus, Consumer, Message, Record, TopicPartition, next_offsets
from meander.bus.kafka_transactions import KafkaTransactional
from meander.bus.transactions import TRANSACTION_RETRY_BACKOFF_MS, Transactions
from meander.exceptions import BusError, MessageTooLarge

Topic = Callable[..., str]


def drain(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Message]:
    """Consume until ``count`` messages arrived or ``timeout`` passed."""
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        received.extend(consumer.consume(max_records=500, timeout=0.5))
    return received


def records(topic: str, count: int, *, keyed: bool = True) -> list[Record]:
    return [
        Record(
            topic,
            f"v{i}".encode(),
            key=f"k{i % 7}".encode() if keyed else None,
            headers=(("ce_id", f"{i}".encode()),),
        )
        for i in range(count)
    ]


def test_published_records_come_back_whole_and_in_order(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    sent = records(name, 20)
    delivered = bus.publish(sent)
    assert [d.offset for d in delivered] == list(range(20))
    with bus.assign([TopicPartition(name, 0)]) as reader:
        got = drain(reader, 20)
    assert [(m.key, m.value, m.headers) for m in got] == [(r.key, r.value, r.headers) for r in sent]
    assert [m.offset for m in got] == list(range(20))
    assert all(abs(m.timestamp_ms - r.timestamp_ms) < 1 for m, r in zip(got, sent, strict=True))


def test_same_key_same_partition_on_every_backend(bus: Bus, topic: Topic) -> None:
    name = topic(4)
    delivered = bus.publish(records(name, 70))
    by_key: dict[int, set[int]] = {}
    for index, where in enumerate(delivered):
        by_key.setdefault(index % 7, set()).add(where.partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())
    # What Kafka's Java client computes for "k0".."k6" over 4 partitions
    # (Utils.toPositive(Utils.murmur2(key)) % 4): both buses must place keys as Kafka does.
    assert {k: p.pop() for k, p in by_key.items()} == {0: 1, 1: 1, 2: 1, 3: 0, 4: 0, 5: 0, 6: 1}


def test_explicit_partition_is_honoured(bus: Bus, topic: Topic) -> None:
    name = topic(3)
    delivered = bus.publish([Record(name, b"x", partition=2), Record(name, b"y", partition=2)])
    assert [(d.partition, d.offset) for d in delivered] == [(2, 0), (2, 1)]


def test_partitions_and_idempotent_create(bus: Bus, topic: Topic) -> None:
    name = topic(3)
    bus.create_topics({name: 5})  # exists already: left as it is
    assert bus.partitions(name) == 3


def test_a_topic_reports_the_settings_it_was_created_with(bus: Bus) -> None:
    name = f"test.{uuid.uuid4().hex[:12]}"
    settings = {"cleanup.policy": "compact", "max.message.bytes": "2000000"}
    bus.create_topics({name: 1}, {name: settings})
    assert settings.items() <= bus.topic_settings(name).items()
    with pytest.raises(BusError, match="does not exist"):
        bus.topic_settings("test.never-created")


def test_unknown_topic_is_an_error_not_a_new_topic(bus: Bus) -> None:
    with pytest.raises(BusError, match="does not exist"):
        bus.publish([Record("test.never-created", b"x")])
    with pytest.raises(BusError, match="does not exist"):
        bus.partitions("test.never-created")


def test_oversized_record_refuses_the_whole_batch(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    too_big = Record(name, b"x" * (bus.max_message_bytes + 1))
    with pytest.raises(MessageTooLarge, match="over the"):
        bus.publish([Record(name, b"small"), too_big])
    with bus.assign([TopicPartition(name, 0)]) as reader:
        assert reader.end_offsets([TopicPartition(name, 0)]) == {TopicPartition(name, 0): 0}


def _settled(first: Consumer, second: Consumer, partitions: int) -> bool:
    mine, theirs = first.assignment(), second.assignment()
    return bool(mine and theirs and mine.isdisjoint(theirs) and len(mine | theirs) == partitions)


def test_group_members_share_partitions_and_see_each_message_once(
    bus: Bus, topic: Topic, group: str
) -> None:
    name = topic(4)
    first = bus.subscribe([name], group)
    second = bus.subscribe([name], group)
    try:
        settle = time.monotonic() + 40
        # On Kafka a join completes only while members poll; wait for a settled generation.
        while not _settled(first, second, 4) and time.monotonic() < settle:
            for member in (first, second):
                member.consume(timeout=0.2)
        assert _settled(first, second, 4), (first.assignment(), second.assignment())
        bus.publish(records(name, 200))
        seen: list[Message] = []
        deadline = time.monotonic() + 40
        while len(seen) < 200 and time.monotonic() < deadline:
            for member in (first, second):
                batch = member.consume(max_records=50, timeout=0.3)
                member.commit()
                seen.extend(batch)
    finally:
        first.close()
        second.close()
    assert sorted(m.value for m in seen) == sorted(r.value for r in records(name, 200))


def test_each_group_reads_everything(bus: Bus, topic: Topic, group: str) -> None:
    name = topic(2)
    bus.publish(records(name, 30))
    for suffix in ("a", "b"):
        with bus.subscribe([name], group + suffix) as reader:
            assert len(drain(reader, 30)) == 30


def test_committed_offsets_are_where_the_group_resumes(bus: Bus, topic: Topic, group: str) -> None:
    name = topic(1)
    bus.publish(records(name, 10))
    partition = TopicPartition(name, 0)
    with bus.subscribe([name], group) as reader:
        assert len(drain(reader, 10)) == 10
        reader.commit({partition: 6})
        assert reader.committed(partition) == 6
    bus.publish(records(name, 2))
    with bus.subscribe([name], group) as reader:
        resumed = drain(reader, 6)
    assert [m.offset for m in resumed] == [6, 7, 8, 9, 10, 11]


def test_commit_without_offsets_commits_what_was_consumed(
    bus: Bus, topic: Topic, group: str
) -> None:
    name = topic(1)
    bus.publish(records(name, 5))
    with bus.subscribe([name], group) as reader:
        drain(reader, 5)
        reader.commit()
        assert reader.committed(TopicPartition(name, 0)) == 5


def test_new_group_can_start_at_the_end(bus: Bus, topic: Topic, group: str) -> None:
    name = topic(1)
    bus.publish(records(name, 5))
    with bus.subscribe([name], group, from_beginning=False) as reader:
        assert drain(reader, 1, timeout=3) == []  # joins the group, positions at the end
        bus.publish([Record(name, b"late")])
        assert [m.value for m in drain(reader, 1)] == [b"late"]


def test_seek_and_position(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    partition = TopicPartition(name, 0)
    bus.publish(records(name, 10))
    with bus.assign([partition]) as reader:
        drain(reader, 10)
        assert reader.position(partition) == 10
        reader.seek(partition, 3)
        assert reader.position(partition) == 3
        assert [m.offset for m in drain(reader, 7)] == list(range(3, 10))
        with pytest.raises(BusError, match="not assigned"):
            reader.seek(TopicPartition(name, 5), 0)


def test_extend_reads_more_partitions_from_their_beginning(
    bus: Bus, topic: Topic, group: str
) -> None:
    name = topic(2)
    first, second = TopicPartition(name, 0), TopicPartition(name, 1)
    bus.publish([Record(name, b"a", partition=0)] * 3 + [Record(name, b"b", partition=1)] * 2)
    with bus.assign([first]) as reader:
        assert len(drain(reader, 3)) == 3
        reader.extend([second])
        assert reader.assignment() == {first, second}
        assert reader.position(first) == 3  # where it was: nothing is read twice
        assert [(m.partition, m.offset) for m in drain(reader, 2)] == [(1, 0), (1, 1)]
    with bus.subscribe([name], group) as member, pytest.raises(BusError, match="group"):
        member.extend([second])


def test_offsets_for_times_finds_the_first_at_or_after(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    partition = TopicPartition(name, 0)
    base = 1_700_000_000_000
    bus.publish([Record(name, b"x", timestamp_ms=base + 1000 * i) for i in range(5)])
    with bus.assign([partition]) as reader:
        found = reader.offsets_for_times({partition: base + 2500})
        late = reader.offsets_for_times({partition: base + 10_000})
    assert found == {partition: 3}
    assert late == {partition: None}


def test_end_offsets(bus: Bus, topic: Topic) -> None:
    name = topic(2)
    bus.publish([Record(name, b"x", partition=1)] * 3)
    parts = [TopicPartition(name, 0), TopicPartition(name, 1)]
    with bus.assign(parts) as reader:
        assert reader.end_offsets(parts) == {parts[0]: 0, parts[1]: 3}


def test_known_end_offsets_are_asked_for_until_reads_bring_them(bus: Bus, topic: Topic) -> None:
    name = topic(2)
    bus.publish([Record(name, b"x", partition=1)] * 3)
    parts = [TopicPartition(name, 0), TopicPartition(name, 1)]
    with bus.assign(parts) as reader:
        assert reader.known_end_offsets(parts) == {parts[0]: 0, parts[1]: 3}  # nothing read yet
        read = _read(reader, 3)
        bus.publish([Record(name, b"y", partition=0)] * 2)
        read += _read(reader, 2)
        assert sorted(m.value for m in read) == [b"x"] * 3 + [b"y"] * 2
        assert reader.known_end_offsets(parts) == {parts[0]: 2, parts[1]: 3}


def _read(reader: Consumer, count: int, seconds: float = 30.0) -> list[Message]:
    found: list[Message] = []
    deadline = time.monotonic() + seconds
    while len(found) < count and time.monotonic() < deadline:
        found += reader.consume(timeout=0.5)
    return found


def test_consume_on_an_empty_topic_returns_within_the_timeout(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    with bus.assign([TopicPartition(name, 0)]) as reader:
        started = time.monotonic()
        assert reader.consume(timeout=0.5) == []
        assert time.monotonic() - started < 5


def test_a_transaction_stores_its_records_and_commits_its_input_offsets_together(
    bus: Bus, topic: Topic, group: str
) -> None:
    source, sink = topic(1), topic(2)
    bus.publish(records(source, 4))
    with bus.subscribe([source], group) as reader, bus.transactional("test") as transactions:
        read = drain(reader, 4)
        answers = [Record(sink, m.value, key=m.value) for m in read]
        transactions.publish(answers, reader, next_offsets(read))
        # Kafka shows a transaction's offsets once its markers are written, a moment after
        # the commit (a read_committed member waits for them: KIP-447's stable offsets).
        deadline = time.monotonic() + 30
        while reader.committed(TopicPartition(source, 0)) != 4:
            assert time.monotonic() < deadline, "the transaction's offsets were never committed"
            time.sleep(0.1)
        with pytest.raises(BusError, match="group"), bus.assign([TopicPartition(source, 0)]) as a:
            transactions.publish(answers, a, next_offsets(read))
    with bus.assign([TopicPartition(sink, 0), TopicPartition(sink, 1)]) as stored:
        assert sorted(m.value for m in drain(stored, 4)) == sorted(m.value for m in read)


def test_a_transaction_prepared_before_its_batch_is_read_publishes_it(
    bus: Bus, topic: Topic, group: str
) -> None:
    source, sink = topic(1), topic(1)
    bus.publish(records(source, 3))
    with bus.subscribe([source], group) as reader, bus.transactional("test") as transactions:
        transactions.prepare()
        if isinstance(transactions, Transactions):  # Kafka: the transactional id registered
            producer = transactions._producer
            assert producer is not None
            transactions.prepare()
            assert transactions._producer is producer  # once: preparing again is nothing
        if isinstance(transactions, KafkaTransactional):
            assert producer.config["retry_backoff_ms"] == TRANSACTION_RETRY_BACKOFF_MS
        read = drain(reader, 3)
        transactions.publish([Record(sink, m.value) for m in read], reader, next_offsets(read))
    with bus.assign([TopicPartition(sink, 0)]) as stored:
        assert sorted(m.value for m in drain(stored, 3)) == sorted(m.value for m in read)


def test_commit_needs_a_group(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    with bus.assign([TopicPartition(name, 0)]) as reader, pytest.raises(BusError, match="group"):
        reader.commit({TopicPartition(name, 0): 1})


def test_send_returns_at_once_and_its_handle_says_where_each_record_went(
    bus: Bus, topic: Topic
) -> None:
    name = topic(4)
    sending = bus.send(records(name, 30))
    delivered = sending.wait(timeout=10)
    assert sending.done()
    assert len(delivered) == 30
    placed = {index % 7: where.partition for index, where in enumerate(delivered)}
    assert placed == {0: 1, 1: 1, 2: 1, 3: 0, 4: 0, 5: 0, 6: 1}  # keys placed as Kafka does
    with bus.assign([TopicPartition(name, p) for p in range(4)]) as reader:
        got = drain(reader, 30)
    assert sorted(m.value for m in got) == sorted(r.value for r in records(name, 30))


def test_send_refuses_a_bad_batch_before_anything_is_sent(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    with pytest.raises(BusError, match="does not exist"):
        bus.send([Record("test.no-such-topic", b"x")])
    with pytest.raises(MessageTooLarge):
        bus.send([Record(name, b"ok"), Record(name, b"x" * (bus.max_message_bytes + 1))])
    with pytest.raises(BusError, match="has no partition 1"):
        bus.send([Record(name, b"ok"), Record(name, b"x", partition=1)])
    with bus.assign([TopicPartition(name, 0)]) as reader:
        assert reader.end_offsets([TopicPartition(name, 0)]) == {TopicPartition(name, 0): 0}


def test_an_asynchronous_commit_is_where_the_group_resumes(
    bus: Bus, topic: Topic, group: str
) -> None:
    name = topic(1)
    bus.publish(records(name, 10, keyed=False))
    partition = TopicPartition(name, 0)
    with bus.subscribe([name], group) as consumer:
        drain(consumer, 10)
        consumer.commit({partition: 6}, asynchronous=True)
        deadline = time.monotonic() + 10
        while consumer.committed(partition) != 6 and time.monotonic() < deadline:
            consumer.consume(timeout=0.1)  # kafka-python completes the commit while polling
        assert consumer.committed(partition) == 6


def test_the_end_seen_by_the_last_fetch_is_never_past_the_real_end(bus: Bus, topic: Topic) -> None:
    name = topic(1)
    partition = TopicPartition(name, 0)
    bus.publish(records(name, 12))
    with bus.assign([partition]) as reader:
        drain(reader, 12)
        assert reader.seen_end(partition) == 12  # what the fetches brought tells the end
        bus.publish(records(name, 3))
        seen = reader.seen_end(partition)
        assert seen is not None and 12 <= seen <= 15  # a fetch may or may not have seen them


def test_each_partition_keeps_the_order_records_were_sent_in(bus: Bus, topic: Topic) -> None:
    name = topic(3)
    mixed = [
        Record(name, f"v{i}".encode(), key=(f"k{i % 5}".encode() if i % 3 else None))
        if i % 4
        else Record(name, f"v{i}".encode(), partition=i % 3)
        for i in range(60)
    ]
    delivered = bus.publish(mixed)
    with bus.assign([TopicPartition(name, p) for p in range(3)]) as reader:
        got = drain(reader, 60)
    where = {m.value: (m.partition, m.offset) for m in got}
    assert [(d.partition, d.offset) for d in delivered] == [where[r.value] for r in mixed]
    for partition in range(3):
        sent = [r.value for r, d in zip(mixed, delivered, strict=True) if d.partition == partition]
        assert sent == [
            m.value for m in sorted(got, key=lambda m: m.offset) if m.partition == partition
        ]
