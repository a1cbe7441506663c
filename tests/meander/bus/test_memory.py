"""What the embedded bus adds to the shared contract: batches land whole or not at all, and a
batch places its keys as single records would."""

from __future__ import annotations

import uuid

import pytest

from meander.bus import MemoryBroker, MemoryBus, Record, TopicPartition
from meander.bus.partitioner import partition_of
from meander.exceptions import BusError


@pytest.fixture
def bus() -> MemoryBus:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"a": 3, "b": 5})
    return bus


def ends(bus: MemoryBus) -> dict[TopicPartition, int]:
    partitions = [TopicPartition("a", p) for p in range(3)] + [
        TopicPartition("b", p) for p in range(5)
    ]
    with bus.assign(partitions) as reader:
        return reader.end_offsets(partitions)


def test_a_batch_places_keys_as_kafka_and_keeps_order_per_partition(bus: MemoryBus) -> None:
    keys = [uuid.uuid4().hex.encode() for _ in range(600)] + [b"short", b"", b"k0"] * 10
    records = [Record("a" if i % 2 else "b", b"%d" % i, key=key) for i, key in enumerate(keys)]
    delivered = bus.publish(records)
    assert [d.partition for d in delivered] == [
        partition_of(r.key or b"", 3 if r.topic == "a" else 5) for r in records
    ]
    by_partition: dict[tuple[str, int], list[int]] = {}
    for where in delivered:
        by_partition.setdefault((where.topic, where.partition), []).append(where.offset)
    assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
    with bus.assign([TopicPartition("a", 1)]) as reader:
        got = reader.consume(max_records=1000, timeout=0)
    assert [m.value for m in got] == [
        r.value
        for r, d in zip(records, delivered, strict=True)
        if (d.topic, d.partition) == ("a", 1)
    ]


def test_keyless_records_spread_and_explicit_partitions_are_kept(bus: MemoryBus) -> None:
    delivered = bus.publish(
        [Record("a", b"x") for _ in range(6)] + [Record("b", b"y", key=b"k", partition=4)]
    )
    assert sorted(d.partition for d in delivered[:6]) == [0, 0, 1, 1, 2, 2]
    assert (delivered[6].partition, delivered[6].offset) == (4, 0)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (Record("never-created", b"x"), "does not exist"),
        (Record("a", b"x", partition=3), "no partition 3"),
    ],
)
def test_a_bad_record_refuses_the_whole_batch(bus: MemoryBus, bad: Record, reason: str) -> None:
    with pytest.raises(BusError, match=reason):
        bus.publish([Record("a", b"first", key=b"k"), bad, Record("b", b"last")])
    assert set(ends(bus).values()) == {0}
