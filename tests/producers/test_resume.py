"""A restarted producer drops, partition by partition, the records its topics already hold."""

from __future__ import annotations

from meander.bus import MemoryBroker, MemoryBus, Message, Record, TopicPartition
from meander.bus.partitioner import partitions_of
from meander.events import decode
from meander.events.headers import as_written
from meander.producers.labels import Publisher
from meander.producers.resume import Stamps
from meander.producers.synthetic import synthetic


def test_a_batch_stored_in_part_is_completed_partition_by_partition() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"t": 3})
    records = [Record("t", b"v", key=f"e{i}".encode()) for i in range(30)]
    placed = partitions_of([r.key or b"" for r in records], 3)
    first = Stamps(bus, "run", ["t"]).new(records)
    # Killed mid-batch: partition 0 got records up to e20, the others up to e10.
    cut = {0: 20, 1: 10, 2: 10}
    bus.publish([r for i, r in enumerate(first) if i <= cut[placed[i]]])

    again = Stamps(bus, "run", ["t"])
    sent = again.new(records[:15]) + again.new(records[15:])

    assert [r.key for r in sent] == [r.key for i, r in enumerate(records) if i > cut[placed[i]]]
    assert not again.resuming and again.skipped == 30 - len(sent)
    partitions = [TopicPartition("t", p) for p in range(3)]
    with bus.assign(partitions) as reader:
        stored = reader.consume(100, 0.1)
    assert len(stored) == 30 - len(sent)


def test_records_of_another_run_or_writer_are_passed_by() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"t": 1})
    records = [Record("t", b"v", key=f"e{i}".encode()) for i in range(5)]
    bus.publish([*Stamps(bus, "other", ["t"]).new(records), Record("t", b"service", key=b"x")])

    assert [r.key for r in Stamps(bus, "run", ["t"]).new(records)] == [r.key for r in records]


def test_a_stamped_event_is_read_as_fast_as_an_unstamped_one() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"s.events": 3})
    events, _ = Publisher("s").push(synthetic("sea").samples(2))
    stamped = Stamps(bus, "run", ["s.events"]).new(events)
    assert [name for name, _ in stamped[0].headers][-1] == "meander-producer"
    # Read by position (the codec's fast path), as encode's own headers are.
    assert as_written(stamped[0].headers) == as_written(events[0].headers) is not None
    message = Message("s.events", 0, 0, stamped[0].key, stamped[0].value, stamped[0].headers, 0)
    assert decode(message).id == events[0].key.decode()  # type: ignore[union-attr]
