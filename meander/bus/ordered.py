"""Reading several partitions in an order that depends on the data alone, never on timing.

A learner's model depends on the order it learns in. Kafka hands back whatever each fetch
brought, so two runs over the same log would interleave partitions differently. The
:class:`OrderedReader` merges its partitions by (timestamp, partition, offset) instead, as a
k-way merge: it releases a message only once every partition either has a message buffered or
has been read to its end. Over the same log, every run sees the same sequence, which is what
lets a learner killed mid-stream resume and end with the model it would have had.
:func:`consume_to` and :func:`read_to_end` read up to given offsets, never less (a learner's
catch-up, a trainer's replay).

>>> from meander.bus import MemoryBroker, MemoryBus, Record
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"t": 2})
>>> _ = bus.publish([Record("t", b"b", partition=1, timestamp_ms=2),
...                  Record("t", b"a", partition=0, timestamp_ms=1),
...                  Record("t", b"c", partition=0, timestamp_ms=3)])
>>> reader = OrderedReader(bus, "t")
>>> [m.value for m in reader.take(10)]
[b'a', b'b', b'c']
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Mapping

from meander.bus import Bus, Consumer, Message, TopicPartition
from meander.bus.whole_topic import WholeTopic
from meander.exceptions import BusUnavailable

__all__ = ["STALL_SECONDS", "OrderedReader", "consume_to", "read_to_end"]

# Seconds a read up to given ends may make no progress before it counts as an outage.
STALL_SECONDS = 10.0


class OrderedReader:
    """A deterministic merge of every partition of ``topic``, resumable from given offsets."""

    def __init__(
        self, bus: Bus, topic: str, offsets: Mapping[TopicPartition, int] | None = None
    ) -> None:
        self._whole = WholeTopic(bus, topic)
        self.partitions, self.consumer = self._whole.partitions, self._whole.consumer
        self._buffers: dict[TopicPartition, deque[Message]] = {p: deque() for p in self.partitions}
        self._next = dict.fromkeys(self.partitions, 0)
        for partition, offset in (offsets or {}).items():
            if partition in self._next:
                self.consumer.seek(partition, offset)
                self._next[partition] = offset

    def offsets(self) -> dict[TopicPartition, int]:
        """The next offset to hand out per partition: what a checkpoint stores."""
        return dict(self._next)

    def take(self, limit: int, timeout: float = 0.0, settle: float = 2.0) -> list[Message]:
        """Up to ``limit`` messages in merged order.

        A partition with nothing buffered holds the merge back until it is read to its end;
        ``settle`` bounds that wait (a fetch in flight), after which the merge goes on without it.
        Partitions added to the topic join the merge from their beginning.
        """
        for partition in self._whole.grow():
            self._buffers[partition], self._next[partition] = deque(), 0
        self._fill(limit, timeout)
        deadline = time.monotonic() + settle
        while self._lagging() and time.monotonic() < deadline:
            self._fill(limit, min(0.05, max(0.0, deadline - time.monotonic())))
        heads = [
            (buffer[0].timestamp_ms, p.partition, buffer[0].offset, p)
            for p, buffer in self._buffers.items()
            if buffer
        ]
        heapq.heapify(heads)
        taken: list[Message] = []
        while heads and len(taken) < limit:
            _, _, _, partition = heapq.heappop(heads)
            buffer = self._buffers[partition]
            message = buffer.popleft()
            taken.append(message)
            self._next[partition] = message.offset + 1
            if buffer:
                head = buffer[0]
                heapq.heappush(
                    heads, (head.timestamp_ms, partition.partition, head.offset, partition)
                )
            elif self._unread(partition):
                break  # its next message is not here yet: releasing more could break the order
        return taken

    def close(self) -> None:
        self.consumer.close()

    def _fill(self, limit: int, timeout: float) -> None:
        # A limit's worth per partition: the merge stops at the first buffer that runs dry.
        for message in self.consumer.consume(limit * len(self.partitions), timeout):
            self._buffers[message.topic_partition].append(message)

    def _lagging(self) -> set[TopicPartition]:
        empty = [p for p, buffer in self._buffers.items() if not buffer]
        behind = {p for p in empty if self._behind_seen_end(p)}
        unsure = [p for p in empty if p not in behind]
        if unsure:  # only these need a round trip to the broker
            ends = self.consumer.end_offsets(unsure)
            behind.update(p for p in unsure if self.consumer.position(p) < ends[p])
        return behind

    def _unread(self, partition: TopicPartition) -> bool:
        return self._behind_seen_end(partition) or (
            self.consumer.position(partition) < self.consumer.end_offsets([partition])[partition]
        )

    def _behind_seen_end(self, partition: TopicPartition) -> bool:
        seen = self.consumer.seen_end(partition)
        return seen is not None and self.consumer.position(partition) < seen


def read_to_end(bus: Bus, ranges: Mapping[TopicPartition, tuple[int, int]]) -> list[Message]:
    """Every message in the half-open offset ranges given per partition, in offset order.

    Never fewer: see :func:`consume_to`, which raises BusUnavailable rather than stop short."""
    wanted = {p: r for p, r in ranges.items() if r[1] > r[0]}
    if not wanted:
        return []
    consumer = bus.assign(sorted(wanted))
    try:
        for partition, (start, _) in wanted.items():
            consumer.seek(partition, start)
        found = consume_to(consumer, {p: end for p, (_, end) in wanted.items()})
        return [m for m in found if m.offset < wanted[m.topic_partition][1]]
    finally:
        consumer.close()


def consume_to(consumer: Consumer, ends: Mapping[TopicPartition, int]) -> list[Message]:
    """What ``consumer`` reads until its position reaches ``ends`` on every partition, never less.

    A read that stopped short would hand on a part as if it were the whole: a learner's
    catch-up would lose the predictions of the events it had not read, a trainer would warm-start
    on a shorter window than asked. So it waits as long as a position moves on (on a loaded
    machine one fetch can take seconds), and raises BusUnavailable once none moved for
    ``STALL_SECONDS``: the caller's step fails and is taken again, as after any outage.

    A consumer already at the ends is not asked for anything: a learner on a backlog of labels
    finds its events and predictions read at nearly every step, and a kafka-python poll with
    nothing to return still hands over to the client's IO thread and back."""
    found: list[Message] = []
    at, moved = _positions(consumer, ends), time.monotonic()
    if _reached(at, ends):
        return found
    while True:
        batch = consumer.consume(2_000, 0.0)
        found.extend(batch)
        now = _positions(consumer, ends)
        if _reached(now, ends):
            return found
        if now != at:
            at, moved = now, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            behind = {f"{p.topic}[{p.partition}]": (now[p], end) for p, end in ends.items()}
            raise BusUnavailable(
                f"no record read for {STALL_SECONDS:g} s short of the end (position, end): {behind}"
            )
        if not batch:
            time.sleep(0.005)  # a fetch is in flight


def _positions(consumer: Consumer, ends: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    return {p: consumer.position(p) for p in ends}


def _reached(positions: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]) -> bool:
    return all(positions[p] >= end for p, end in ends.items())
