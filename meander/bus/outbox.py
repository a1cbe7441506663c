"""What a component must publish, in order, kept until the bus has it, and sent only once.

A publish that times out has not failed: the records are with the bus's producer, which keeps
trying, and may be stored a moment later. Publishing them again would store them twice, so an
:class:`Outbox` keeps the :class:`~meander.bus.Sending` and waits on it again at the next
:meth:`Outbox.flush`. Records the bus did not take at all (the broker was unreachable when they
were handed over) are sent then.

>>> from meander.bus import MemoryBroker, MemoryBus, Record
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"out": 1})
>>> outbox = Outbox(bus)
>>> outbox.add([Record("out", b"a"), Record("out", b"b")])
>>> len(outbox), [d.offset for d in outbox.flush()], len(outbox)
(1, [0, 1], 0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from meander.bus.base import Bus, Delivered, Record, Sending
from meander.exceptions import BusError, BusUnavailable

__all__ = ["Outbox"]


class Outbox:
    """Batches on their way to ``bus``; :meth:`flush` raises BusUnavailable when the oldest is
    not acknowledged within ``timeout`` seconds (the bus's own when None), keeping it and the
    later ones for the next call. What the bus refused (any other BusError) was not stored: the
    next call sends it anew."""

    def __init__(self, bus: Bus, timeout: float | None = None) -> None:
        self.bus = bus
        self.timeout = timeout
        self._queue: deque[_Batch] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, records: Sequence[Record], stored: Callable[[], None] | None = None) -> None:
        """Queue ``records``; :meth:`flush` sends them, then calls ``stored`` (to count them)."""
        if records:
            self._queue.append(_Batch(records, stored))

    def flush(self, timeout: float | None = None) -> list[Delivered]:
        """Wait until the bus has stored every queued batch, oldest first; returns where it
        stored each record, in order."""
        stored: list[Delivered] = []
        while self._queue:
            batch = self._queue[0]
            if batch.sending is None:
                # Raising (the broker unreachable) leaves the records queued for the next flush.
                batch.sending = self.bus.send(batch.records)
            try:
                stored += batch.sending.wait(self.timeout if timeout is None else timeout)
            except BusUnavailable:
                raise  # still with the producer: the next flush waits on the same sending
            except BusError:
                batch.keep_refused()  # refused, so not stored: the next flush sends it anew
                raise
            self._queue.popleft()
            if batch.stored is not None:
                batch.stored()
        return stored


class _Batch:
    __slots__ = ("records", "sending", "stored")

    def __init__(self, records: Sequence[Record], stored: Callable[[], None] | None) -> None:
        self.records = records
        self.stored = stored
        self.sending: Sending | None = None  # once handed to the bus

    def keep_refused(self) -> None:
        """Keep only the records the bus refused, to be sent anew."""
        assert self.sending is not None
        positions = self.sending.refused()
        if positions is not None:
            self.records = [self.records[i] for i in positions]
        self.sending = None
