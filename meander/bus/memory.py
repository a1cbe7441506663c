"""The embedded bus: an in-process log with Kafka's semantics, for the demo and unit tests.

Keys map to partitions with Kafka's own murmur2 partitioner, groups spread partitions over their
members as Kafka's range assignor does, and committed offsets outlive the consumers that made
them. Every bus opened on the same broker sees the same topics, so the components of
``meander run all`` talk to each other through it as they would through Kafka.

>>> from meander.bus import Record, TopicPartition
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"demo.events": 2})
>>> [d.offset for d in bus.publish([Record("demo.events", b"a", key=b"k")] * 2)]
[0, 1]
>>> with bus.subscribe(["demo.events"], group="readers") as consumer:
...     [m.value for m in consumer.consume(timeout=0.1)]
[b'a', b'a']
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from meander.bus.base import (
    Bus,
    Consumer,
    Delivered,
    Message,
    Record,
    TopicPartition,
    Transactional,
)
from meander.bus.broker import GroupState, MemoryBroker, shared_broker
from meander.clock import DEFAULT_MAX_AHEAD_SECONDS, TimeWindow
from meander.exceptions import BusError

__all__ = ["MemoryBroker", "MemoryBus", "shared_broker"]


class MemoryBus(Bus):
    """A bus on an in-process :class:`MemoryBroker`."""

    def __init__(
        self,
        broker: MemoryBroker | None = None,
        max_message_bytes: int = 1_000_000,
        topic_limits: Mapping[str, int] | None = None,
        max_ahead_seconds: float = DEFAULT_MAX_AHEAD_SECONDS,
    ):
        self.broker = broker or shared_broker()
        self.max_message_bytes = max_message_bytes
        self.topic_limits = dict(topic_limits or {})
        self.time_window = TimeWindow(max_ahead_seconds)

    def create_topics(
        self, topics: Mapping[str, int], configs: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        # An in-process log keeps every record (nothing is compacted): it only keeps the settings.
        self.broker.create_topics(topics, configs)

    def partitions(self, topic: str) -> int:
        return self.broker.partitions(topic)

    def topic_settings(self, topic: str) -> dict[str, str]:
        return self.broker.settings(topic)

    def publish(self, records: Sequence[Record], timeout: float | None = None) -> list[Delivered]:
        self.check_records(records)
        return self.broker.append(records)

    def subscribe(
        self, topics: Sequence[str], group: str, *, from_beginning: bool = True
    ) -> Consumer:
        return MemoryConsumer(self.broker, topics, group=group, from_beginning=from_beginning)

    def assign(self, partitions: Sequence[TopicPartition]) -> Consumer:
        for partition in partitions:
            self.broker.partitions(partition.topic)  # raises for an unknown topic
        return MemoryConsumer(self.broker, (), partitions=partitions)

    def transactional(self, name: str) -> Transactional:
        return MemoryTransactional(self)

    def close(self) -> None:
        """Nothing to flush: publish returns once the records are in the log."""


class MemoryTransactional(Transactional):
    """A transaction on the embedded broker: the records and the offsets stored under its lock,
    so no reader sees one without the other."""

    def __init__(self, bus: MemoryBus) -> None:
        self.bus = bus

    def publish(
        self, records: Sequence[Record], consumer: Consumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        if not isinstance(consumer, MemoryConsumer) or consumer.group is None:
            raise BusError("a transaction commits a group's offsets: use subscribe()'s consumer")
        self.bus.check_records(records)
        with self.bus.broker.changed:
            self.bus.broker.append(records)
            consumer.commit(offsets)

    def close(self) -> None:
        """Nothing held: every transaction is over when publish returns."""


class MemoryConsumer(Consumer):
    """A group member or a self-assigned reader of a :class:`MemoryBroker`."""

    def __init__(
        self,
        broker: MemoryBroker,
        topics: Sequence[str],
        *,
        group: str | None = None,
        from_beginning: bool = True,
        partitions: Sequence[TopicPartition] = (),
    ) -> None:
        self.broker = broker
        self.topics = frozenset(topics)
        self.group = group
        self.from_beginning = from_beginning
        self._positions = {p: 0 for p in partitions}
        self._generation = -1
        self._closed = False
        self._turn = 0
        if group is not None:
            broker.join(group, self)

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.broker.changed:
            while True:
                self._follow_rebalance()
                batch = self._take(max_records)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._closed:
                    return batch
                self.broker.changed.wait(remaining)

    def commit(
        self, offsets: Mapping[TopicPartition, int] | None = None, *, asynchronous: bool = False
    ) -> None:
        # The log is in this process: a commit is as quick either way, so it is always made now.
        if self.group is None:
            raise BusError("a consumer outside a group has nothing to commit to; use subscribe()")
        with self.broker.changed:
            self._follow_rebalance()
            self.broker.group(self.group).committed.update(
                self._positions if offsets is None else offsets
            )

    def committed(self, partition: TopicPartition) -> int | None:
        if self.group is None:
            return None
        with self.broker.changed:
            return self.broker.group(self.group).committed.get(partition)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        with self.broker.changed:
            self._follow_rebalance()
            self._require(partition)
            self._positions[partition] = offset

    def position(self, partition: TopicPartition) -> int:
        with self.broker.changed:
            self._follow_rebalance()
            self._require(partition)
            return self._positions[partition]

    def assignment(self) -> set[TopicPartition]:
        with self.broker.changed:
            self._follow_rebalance()
            return set(self._positions)

    def extend(self, partitions: Sequence[TopicPartition]) -> None:
        if self.group is not None:
            raise BusError("a group's consumer reads what the group assigns it")
        with self.broker.changed:
            for partition in partitions:
                self._positions.setdefault(partition, 0)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        with self.broker.changed:
            return {p: self.broker.offset_for_time(p, ts) for p, ts in timestamps.items()}

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        with self.broker.changed:
            return {p: self.broker.end_offset(p) for p in partitions}

    def seen_end(self, partition: TopicPartition) -> int | None:
        with self.broker.changed:
            return self.broker.end_offset(partition)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.group is not None:
                self.broker.leave(self.group, self)

    def _follow_rebalance(self) -> None:
        if self.group is None:
            return
        group = self.broker.group(self.group)
        if group.generation == self._generation:
            return
        assigned = group.assignments.get(id(self), set())
        kept = {p: o for p, o in self._positions.items() if p in assigned}
        for partition in assigned - kept.keys():
            kept[partition] = self._starting_offset(group, partition)
        self._positions = kept
        self._generation = group.generation

    def _starting_offset(self, group: GroupState, partition: TopicPartition) -> int:
        committed = group.committed.get(partition)
        if committed is not None:
            return committed
        return 0 if self.from_beginning else self.broker.end_offset(partition)

    def _take(self, limit: int) -> list[Message]:
        partitions = sorted(self._positions)
        if not partitions:
            return []
        # Start from a different partition each call so that no partition starves the others.
        self._turn = (self._turn + 1) % len(partitions)
        batch: list[Message] = []
        for partition in partitions[self._turn :] + partitions[: self._turn]:
            taken = self.broker.read(partition, self._positions[partition], limit - len(batch))
            if taken:
                batch.extend(taken)
                self._positions[partition] = taken[-1].offset + 1
            if len(batch) >= limit:
                break
        return batch

    def _require(self, partition: TopicPartition) -> None:
        if partition not in self._positions:
            raise BusError(
                f"{partition.topic}[{partition.partition}] is not assigned to this consumer"
            )
