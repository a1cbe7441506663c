"""Batches in flight: publish without waiting, commit what they answer once they are stored.

A consume-and-publish loop that waits for every acknowledgement before it reads on leaves the
broker round trip on its critical path. :class:`InFlight` lets it send a batch's output and go
on; each batch remembers the input offsets it answers, and only the oldest batches whose
records are all acknowledged have their offsets committed, in order, asynchronously. So a
crash loses nothing (what was read but not acknowledged is read again, at least once) and
nothing is committed ahead of its output.

When a batch fails to be stored, the consumer is rewound to the first offset of every batch
still in flight and the error is raised: the loop logs it and reads those events again. A batch
not acknowledged in time has not failed: it stays with the producer, which keeps trying, and is
waited on again (reading its events again would publish their output twice).

>>> from meander.bus import MemoryBroker, MemoryBus, Record
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"in": 1, "out": 1})
>>> _ = bus.publish([Record("in", b"a"), Record("in", b"b")])
>>> consumer = bus.subscribe(["in"], group="g")
>>> flights = InFlight(consumer)
>>> read = consumer.consume(timeout=0.1)
>>> flights.add(bus.send([Record("out", m.value) for m in read]), read)
>>> flights.settle()
2
>>> consumer.committed(TopicPartition("in", 0))
2
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from meander.bus.base import Consumer, Message, Sending, TopicPartition
from meander.exceptions import BusError, BusUnavailable

__all__ = ["MAX_EVENTS", "InFlight", "offset_ranges"]

log = logging.getLogger(__name__)

MAX_EVENTS = 4_000
"""Messages whose output may be in flight at once: eight of the predictor's full batches. A
bound in messages, not batches: eight batches of a few events each (a predictor's steps at
5,000 events/s) made every ninth small step wait for an acknowledgement."""


def offset_ranges(messages: Sequence[Message]) -> dict[TopicPartition, tuple[int, int]]:
    """Per partition, the first offset read and the next one to read after ``messages``.

    >>> read = [Message("t", 0, offset, None, b"", (), 0) for offset in (4, 6)]
    >>> offset_ranges(read)
    {TopicPartition(topic='t', partition=0): (4, 7)}
    """
    ranges: dict[TopicPartition, tuple[int, int]] = {}
    for message in messages:
        partition = TopicPartition(message.topic, message.partition)
        found = ranges.get(partition)
        offset = message.offset
        if found is None:
            ranges[partition] = (offset, offset + 1)
        else:
            ranges[partition] = (min(found[0], offset), max(found[1], offset + 1))
    return ranges


class _Flight(NamedTuple):
    sending: Sending
    ranges: dict[TopicPartition, tuple[int, int]]
    events: int


class InFlight:
    """The output of read batches on its way to the bus, and the commits that wait for it."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        max_events: int = MAX_EVENTS,
        timeout: float = 30.0,
        commit_every: float = 0.0,
    ):
        self.consumer = consumer
        self.max_events = max_events
        self.timeout = timeout
        # Under load a step can be a few events long, and a commit per step is a request per
        # step (kafka-python refuses some when its connection has too many in flight). What
        # landed is committed at most every ``commit_every`` seconds: a crash reads again what
        # landed since, at least once as ever.
        self.commit_every = commit_every
        self._committed_at = float("-inf")
        self._flights: deque[_Flight] = deque()
        self._events = 0  # the messages whose batches are in flight
        self._acknowledged: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def add(self, sending: Sending, read: Sequence[Message]) -> None:
        """Track ``sending``, the output of ``read``; wait for the oldest batches while more
        than ``max_events`` messages are in flight, so that memory and redelivery after a
        crash stay bounded."""
        if not read:
            return
        self._flights.append(_Flight(sending, offset_ranges(read), len(read)))
        self._events += len(read)
        while self._events > self.max_events:
            self._land(self._flights[0], self.timeout)

    def settle(self) -> int:
        """Commit, asynchronously, the input of every acknowledged batch older than the first
        that is not, at most every ``commit_every`` seconds; returns how many messages landed.
        Never blocks."""
        landed = 0
        try:
            while self._flights and self._flights[0].sending.done():
                landed += self._land(self._flights[0], 0.0)
        finally:
            # Also when a later batch failed: what landed before it stays landed.
            if time.monotonic() - self._committed_at >= self.commit_every:
                self._commit(asynchronous=True)
        return landed

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every batch in flight, then commit what they answer, synchronously.

        A batch that failed raises after the consumer is rewound, as in :meth:`settle`."""
        try:
            while self._flights:
                self._land(self._flights[0], self.timeout if timeout is None else timeout)
        finally:
            self._commit(asynchronous=False)

    def _commit(self, *, asynchronous: bool) -> None:
        # Only what moved: a partition this consumer no longer owns keeps its new owner's commit.
        moved = {p: o for p, o in self._acknowledged.items() if self._committed.get(p) != o}
        if moved:
            self.consumer.commit(moved, asynchronous=asynchronous)
            self._committed.update(moved)
            self._committed_at = time.monotonic()

    def _land(self, flight: _Flight, timeout: float) -> int:
        try:
            flight.sending.wait(timeout)
        except BusUnavailable:
            raise  # still on its way: the next settle or flush waits for it again
        except BusError as error:
            rewound = self._rewind()
            raise BusError(
                f"the output of {flight.events} message(s) was not stored ({error}); "
                f"their input is read again from {rewound}, and nothing past it is committed"
            ) from error
        self._flights.popleft()
        self._events -= flight.events
        for partition, (_, end) in flight.ranges.items():
            self._acknowledged[partition] = max(self._acknowledged.get(partition, 0), end)
        return flight.events

    def _rewind(self) -> dict[TopicPartition, int]:
        """Seek back to the first offset of every batch in flight, and forget them."""
        starts: dict[TopicPartition, int] = {}
        for flight in self._flights:
            for partition, (start, _) in flight.ranges.items():
                starts[partition] = min(starts.get(partition, start), start)
        self._flights.clear()
        self._events = 0
        for partition, offset in starts.items():
            try:
                self.consumer.seek(partition, offset)
            except BusError:
                # Revoked in a rebalance: its new owner reads on from the last commit.
                log.warning("%s[%d] is no longer assigned; not rewound", *partition)
        return starts
