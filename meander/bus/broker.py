"""The embedded broker: topics of partitioned logs, and consumer groups, in process memory.

Keys map to partitions with Kafka's own murmur2 partitioner, groups spread partitions over
their members as Kafka's range assignor does, and committed offsets outlive the consumers that
made them. :class:`meander.bus.memory.MemoryBus` is the bus on top of it.

>>> from meander.bus import Record
>>> broker = MemoryBroker()
>>> broker.create_topics({"t": 2})
>>> [d.offset for d in broker.append([Record("t", b"a", key=b"k")] * 2)]
[0, 1]
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from meander.bus.base import Delivered, Message, Record, TopicPartition, unknown_topic
from meander.bus.partitioner import POSITIVE, murmur2_many
from meander.exceptions import BusError

__all__ = ["MemoryBroker", "shared_broker"]


class Member(Protocol):
    """What the broker needs of a group member (a ``MemoryConsumer`` is one): the topics it
    subscribes to."""

    @property
    def topics(self) -> Collection[str]: ...


class GroupState:
    """A consumer group: its members in join order, their partitions, and its commits."""

    def __init__(self) -> None:
        self.members: list[Member] = []
        self.generation = 0
        self.assignments: dict[int, set[TopicPartition]] = {}
        self.committed: dict[TopicPartition, int] = {}


class MemoryBroker:
    """The log itself: topics, partitions, groups. Thread-safe; one per process by default."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self._topics: dict[str, list[list[Message]]] = {}
        self._settings: dict[str, dict[str, str]] = {}
        self._groups: dict[str, GroupState] = {}
        self._spread = itertools.count()

    def create_topics(
        self, topics: Mapping[str, int], configs: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        with self.changed:
            for name, count in topics.items():
                if count < 1:
                    raise BusError(f"topic {name!r} needs at least one partition, got {count}")
                if name not in self._topics:
                    self._topics[name] = [[] for _ in range(count)]
                    self._settings[name] = dict((configs or {}).get(name, {}))
            for group in self._groups.values():
                self._rebalance(group)

    def partitions(self, topic: str) -> int:
        with self.changed:
            return len(self._log(topic))

    def settings(self, topic: str) -> dict[str, str]:
        """The settings ``topic`` was created with."""
        with self.changed:
            self._log(topic)  # raises for an unknown topic
            return dict(self._settings[topic])

    def append(self, records: Sequence[Record]) -> list[Delivered]:
        """Store ``records`` in order; an unknown topic or partition refuses the whole batch."""
        with self.changed:
            logs = [self._log(record.topic) for record in records]
            placed = self._place(records, logs)
            delivered = []
            for record, log, partition in zip(records, logs, placed, strict=True):
                offset = len(log[partition])
                log[partition].append(
                    Message(
                        record.topic,
                        partition,
                        offset,
                        record.key,
                        record.value,
                        record.headers,
                        record.timestamp_ms,
                    )
                )
                delivered.append(Delivered(record.topic, partition, offset))
            self.changed.notify_all()
        return delivered

    def read(self, partition: TopicPartition, offset: int, limit: int) -> list[Message]:
        return self._log(partition.topic)[partition.partition][offset : offset + limit]

    def end_offset(self, partition: TopicPartition) -> int:
        return len(self._log(partition.topic)[partition.partition])

    def offset_for_time(self, partition: TopicPartition, timestamp_ms: int) -> int | None:
        log = self._log(partition.topic)[partition.partition]
        return next((m.offset for m in log if m.timestamp_ms >= timestamp_ms), None)

    def group(self, name: str) -> GroupState:
        return self._groups.setdefault(name, GroupState())

    def join(self, name: str, member: Member) -> None:
        with self.changed:
            group = self.group(name)
            group.members.append(member)
            self._rebalance(group)

    def leave(self, name: str, member: Member) -> None:
        with self.changed:
            group = self.group(name)
            if member in group.members:
                group.members.remove(member)
                self._rebalance(group)
            self.changed.notify_all()

    def _log(self, topic: str) -> list[list[Message]]:
        try:
            return self._topics[topic]
        except KeyError:
            raise unknown_topic(topic) from None

    def _place(self, records: Sequence[Record], logs: list[list[list[Message]]]) -> list[int]:
        # The same hash as Kafka's default partitioner, so keys land alike on both buses; the
        # keys of a batch are hashed together, which costs a fraction of hashing one at a time.
        hashes = iter(
            murmur2_many([r.key for r in records if r.partition is None and r.key is not None])
        )
        placed = []
        for record, log in zip(records, logs, strict=True):
            count = len(log)
            if record.partition is not None:
                if not 0 <= record.partition < count:
                    raise BusError(
                        f"{record.topic} has no partition {record.partition} (has {count})"
                    )
                placed.append(record.partition)
            elif record.key is not None:
                placed.append((next(hashes) & POSITIVE) % count)
            else:
                placed.append(next(self._spread) % count)
        return placed

    def _rebalance(self, group: GroupState) -> None:
        # Kafka's range assignor: per topic, consecutive partitions to members in join order.
        group.assignments = {id(member): set() for member in group.members}
        topics = sorted({t for member in group.members for t in member.topics if t in self._topics})
        for topic in topics:
            members = [m for m in group.members if topic in m.topics]
            count = len(self._topics[topic])
            for index, member in enumerate(members):
                start, stop = index * count // len(members), (index + 1) * count // len(members)
                group.assignments[id(member)].update(
                    TopicPartition(topic, p) for p in range(start, stop)
                )
        group.generation += 1


_SHARED = MemoryBroker()


def shared_broker() -> MemoryBroker:
    """The process-wide broker that every embedded bus uses unless given its own."""
    return _SHARED
