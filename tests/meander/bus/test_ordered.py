"""The ordered reader merges partitions by (timestamp, partition, offset), whatever the fetches."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from meander.bus import Consumer, MemoryBroker, MemoryBus, Message, Record, TopicPartition, ordered
from meander.bus.ordered import OrderedReader, read_to_end
from meander.exceptions import BusUnavailable

TOPIC = "t"


def bus_with(stamps: dict[int, list[int]], partitions: int = 3) -> MemoryBus:
    """A bus whose topic holds, per partition, one message per timestamp, valued p:offset."""
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({TOPIC: partitions})
    bus.publish(
        [
            Record(TOPIC, f"{p}:{i}".encode(), partition=p, timestamp_ms=ts)
            for p, series in stamps.items()
            for i, ts in enumerate(series)
        ]
    )
    return bus


def seeded_stamps(seed: int, monotonic: bool = True) -> dict[int, list[int]]:
    rng = random.Random(seed)
    stamps = {}
    for p in range(3):
        series = [rng.randrange(0, 200) for _ in range(rng.randrange(20, 60))]
        stamps[p] = sorted(series) if monotonic else series
    return stamps


def read_all(reader: OrderedReader, limit: int) -> list[Message]:
    taken: list[Message] = []
    while batch := reader.take(limit):
        taken += batch
    return taken


def key(message: Message) -> tuple[int, int, int]:
    return (message.timestamp_ms, message.partition, message.offset)


@pytest.mark.parametrize("limit", [1, 3, 7, 500])
def test_partitions_merge_by_timestamp_then_partition_then_offset(limit: int) -> None:
    stamps = seeded_stamps(seed=limit)
    stamps[2][:3] = [stamps[0][0]] * 3  # ties across and within partitions
    reader = OrderedReader(bus_with(stamps), TOPIC)

    taken = read_all(reader, limit)

    assert [key(m) for m in taken] == sorted(key(m) for m in taken)
    assert len(taken) == sum(len(s) for s in stamps.values())
    assert reader.offsets() == {TopicPartition(TOPIC, p): len(s) for p, s in stamps.items()}


def test_the_merged_sequence_does_not_depend_on_the_batch_size() -> None:
    # Timestamps out of order inside a partition (producers set them): the merge is then not
    # sorted, but it is still decided by the log alone.
    stamps = seeded_stamps(seed=3, monotonic=False)
    sequences = {
        limit: [m.value for m in read_all(OrderedReader(bus_with(stamps), TOPIC), limit)]
        for limit in (1, 2, 5, 13, 1_000)
    }

    assert len({tuple(s) for s in sequences.values()}) == 1
    assert len(sequences[1]) == sum(len(s) for s in stamps.values())


@pytest.mark.parametrize("stop_after", [1, 17, 60])
@pytest.mark.parametrize("monotonic", [True, False])
def test_resuming_from_offsets_gives_the_rest_of_the_uninterrupted_read(
    stop_after: int, monotonic: bool
) -> None:
    stamps = seeded_stamps(seed=11, monotonic=monotonic)
    bus = bus_with(stamps)
    uninterrupted = [m.value for m in read_all(OrderedReader(bus, TOPIC), 4)]

    first = OrderedReader(bus, TOPIC)
    head = [m.value for m in first.take(stop_after)]
    checkpoint = first.offsets() | {TopicPartition("other", 0): 9}  # other topics are ignored
    first.take(5)  # handed out after the checkpoint: the resumed reader must see them again
    resumed = OrderedReader(bus, TOPIC, checkpoint)
    tail = [m.value for m in read_all(resumed, 4)]

    assert head + tail == uninterrupted


def test_offsets_name_the_next_message_to_hand_out_not_what_was_fetched() -> None:
    reader = OrderedReader(bus_with({0: [1, 2, 3], 1: [10, 11]}), TOPIC)

    assert [m.value for m in reader.take(2)] == [b"0:0", b"0:1"]
    assert reader.offsets() == {
        TopicPartition(TOPIC, 0): 2,
        TopicPartition(TOPIC, 1): 0,
        TopicPartition(TOPIC, 2): 0,
    }


def test_a_partition_at_its_end_does_not_hold_back_the_others() -> None:
    # Partition 2 is empty and partition 0 runs out first; partition 1 still flows.
    bus = bus_with({0: [5], 1: [1, 6, 7, 8]})
    reader = OrderedReader(bus, TOPIC)

    assert [m.value for m in reader.take(100, settle=0.0)] == [
        b"1:0",
        b"0:0",
        b"1:1",
        b"1:2",
        b"1:3",
    ]

    bus.publish([Record(TOPIC, b"late", partition=1, timestamp_ms=2)])
    assert [m.value for m in reader.take(100, settle=0.0)] == [b"late"]
    assert reader.take(100, settle=0.0) == []


def test_read_to_end_returns_exactly_the_half_open_ranges() -> None:
    bus = bus_with({0: list(range(10)), 1: list(range(10)), 2: list(range(10))})
    ranges = {
        TopicPartition(TOPIC, 0): (2, 5),
        TopicPartition(TOPIC, 1): (0, 10),
        TopicPartition(TOPIC, 2): (4, 4),  # empty: nothing from it
    }

    found = read_to_end(bus, ranges)

    by_partition: dict[int, list[int]] = {}
    for message in found:
        by_partition.setdefault(message.partition, []).append(message.offset)
    assert by_partition == {0: [2, 3, 4], 1: list(range(10))}


def test_read_to_end_of_nothing_reads_nothing() -> None:
    bus = bus_with({0: [1, 2]})

    assert read_to_end(bus, {}) == []
    assert read_to_end(bus, {TopicPartition(TOPIC, 0): (1, 1)}) == []


class SlowBroker:
    """A clock that only moves when the reader waits, and a bus whose fetches take ``fetch`` s of
    it each and bring at most ``per_fetch`` messages (none once ``stall_after`` were read)."""

    def __init__(self, bus: MemoryBus, fetch: float, per_fetch: int, stall_after: int) -> None:
        self.now, self.fetch, self.per_fetch, self.left = 0.0, fetch, per_fetch, stall_after
        self.assign = bus.assign

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def slow_assign(self, partitions: list[TopicPartition]) -> Consumer:
        consumer = self.assign(partitions)
        fast = consumer.consume

        def consume(max_records: int = 500, timeout: float = 1.0) -> list[Message]:
            self.now += self.fetch
            batch = fast(min(max_records, self.per_fetch, self.left), 0.0) if self.left else []
            self.left -= len(batch)
            return batch

        consumer.consume = consume  # type: ignore[method-assign]
        return consumer


@pytest.fixture
def slow_broker(monkeypatch: pytest.MonkeyPatch) -> Callable[..., MemoryBus]:
    def make(fetch: float, per_fetch: int, stall_after: int = 10**9) -> MemoryBus:
        bus = bus_with({0: list(range(1_000))}, partitions=1)
        broker = SlowBroker(bus, fetch, per_fetch, stall_after)
        monkeypatch.setattr(ordered, "time", broker)
        monkeypatch.setattr(bus, "assign", broker.slow_assign)
        return bus

    return make


def test_read_to_end_reads_on_for_as_long_as_the_fetches_bring_something(
    slow_broker: Callable[..., MemoryBus],
) -> None:
    # 5 s per fetch of 100 on a loaded broker: 50 s for the 1,000 asked for. A read that gave
    # up after a fixed time handed a trainer a shorter window than its request named.
    bus = slow_broker(fetch=5.0, per_fetch=100)

    found = read_to_end(bus, {TopicPartition(TOPIC, 0): (0, 1_000)})

    assert [m.offset for m in found] == list(range(1_000))


def test_read_to_end_raises_once_nothing_came_for_the_stall_time(
    slow_broker: Callable[..., MemoryBus],
) -> None:
    bus = slow_broker(fetch=1.0, per_fetch=100, stall_after=300)

    with pytest.raises(BusUnavailable, match=r"short of the end .*t\[0\]': \(300, 1000\)"):
        read_to_end(bus, {TopicPartition(TOPIC, 0): (0, 1_000)})


def test_consume_to_asks_nothing_of_a_consumer_already_at_the_ends() -> None:
    # A learner on a backlog of labels has read its events and predictions at nearly every
    # step: a kafka-python poll with nothing to return still costs a hand-over to its IO thread.
    bus = bus_with({0: [1, 2, 3]}, partitions=1)
    partition = TopicPartition(TOPIC, 0)
    consumer = bus.assign([partition])
    polls: list[int] = []
    consume = consumer.consume

    def counted(max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        polls.append(max_records)
        return consume(max_records, timeout)

    consumer.consume = counted  # type: ignore[method-assign]

    assert [m.offset for m in ordered.consume_to(consumer, {partition: 3})] == [0, 1, 2]
    asked = len(polls)
    assert ordered.consume_to(consumer, {partition: 3}) == []
    assert ordered.consume_to(consumer, {partition: 2}) == []
    assert len(polls) == asked >= 1
