"""Reading a topic live for one client: no consumer group, and a cursor to resume from.

Every client of a live feed (SSE, WebSocket) gets a reader of its own, in a worker thread: a
consumer of every partition of the topic from their end (or the client's cursor), outside any
group, so every service process delivers every event to its own clients. What it reads is
decoded and filtered there and handed to the event loop through a bounded queue; once a slow
client has let it stay full for ``stall_seconds``, its feed ends with the reason.

A cursor is the next offset of every partition, ``partition:offset`` pairs in partition order.
After each delivered event it names exactly what the client has seen, so resuming from it
repeats nothing and loses nothing that Kafka still holds:

>>> format_cursor({1: 7, 0: 15, 2: 30})
'0:15,1:7,2:30'
>>> parse_cursor("0:15,1:7,2:30")
{0: 15, 1: 7, 2: 30}
>>> parse_cursor("0:15;1:7")
Traceback (most recent call last):
  ...
meander.services.live.CursorError: '0:15;1:7' is not a cursor: '0:15;1:7' is not partition:...
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from meander.bus import Bus, Message
from meander.bus.whole_topic import WholeTopic
from meander.events import Envelope, decode
from meander.exceptions import ContractError, MeanderError

__all__ = [
    "CursorError",
    "Delivery",
    "Ended",
    "LiveFeed",
    "Render",
    "format_cursor",
    "parse_cursor",
]

log = logging.getLogger(__name__)

MAX_CURSOR_CHARS = 8_192
POLL_SECONDS = 0.25  # how soon a reader notices that its client left
_PAIR = re.compile(r"(\d{1,9}):(\d{1,19})")

Render = Callable[[Envelope], dict[str, Any] | None]
"""What a client is sent for an event (JSON-ready), or None when its filters leave it out."""


class CursorError(MeanderError, ValueError):
    """A cursor (an SSE Last-Event-ID) that is not one this service wrote for this topic."""


def format_cursor(positions: Mapping[int, int]) -> str:
    """The cursor for ``positions`` (partition -> next offset)."""
    return ",".join(f"{partition}:{positions[partition]}" for partition in sorted(positions))


def parse_cursor(text: str) -> dict[int, int]:
    """Partition -> next offset; CursorError naming the problem when ``text`` is malformed."""
    shown = repr(text[:60] + ("..." if len(text) > 60 else ""))
    if len(text) > MAX_CURSOR_CHARS:
        raise CursorError(f"{shown} is not a cursor: longer than {MAX_CURSOR_CHARS} characters")
    if not text.strip():
        raise CursorError("the cursor is empty: send the id of the last event received")
    positions: dict[int, int] = {}
    for pair in text.split(","):
        matched = _PAIR.fullmatch(pair.strip())
        if matched is None:
            raise CursorError(
                f"{shown} is not a cursor: {pair[:30]!r} is not partition:offset (two whole "
                f"numbers, like 0:15); send the id of the last event received as it was"
            )
        partition, offset = int(matched[1]), int(matched[2])
        if partition in positions:
            raise CursorError(f"{shown} is not a cursor: it names partition {partition} twice")
        positions[partition] = offset
    return positions


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for the client: what to send, and the cursor just after it."""

    cursor: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ended:
    """The feed ended on the server's side (the client too slow, the bus failing): why."""

    reason: str


class LiveFeed:
    """One client's reader of ``topic``, from :meth:`open` (blocking) to :meth:`close`.

    >>> from meander.bus import MemoryBroker, MemoryBus
    >>> from meander.events import Alert, encode
    >>> bus = MemoryBus(MemoryBroker())
    >>> bus.create_topics({"meander.alerts": 1})
    >>> feed = LiveFeed.open(bus, "meander.alerts", lambda envelope: {"id": envelope.id})
    >>> feed.start_cursor
    '0:0'
    >>> alert = Alert(kind="data_drift", stream="s", severity="info", statistic="psi", value=1)
    >>> _ = bus.publish([encode("meander.alerts", alert, source="/doc", event_id="a1")])
    >>> async def first() -> Delivery | Ended:
    ...     async for item in feed.deliveries():
    ...         return item
    ...     raise AssertionError("the feed ended")
    >>> asyncio.run(first())
    Delivery(cursor='0:1', data={'id': 'a1'})
    >>> feed.close()
    """

    def __init__(
        self,
        whole: WholeTopic,
        positions: dict[int, int],
        render: Render,
        *,
        capacity: int = 1_000,
        stall_seconds: float = 10.0,
        max_event_bytes: int | None = None,
    ) -> None:
        self.topic = whole.topic
        self.render = render
        self.capacity = capacity
        self.stall_seconds = stall_seconds
        self.max_event_bytes = max_event_bytes
        self.start_cursor = format_cursor(positions)
        self._whole, self._consumer = whole, whole.consumer
        self._positions = positions
        self._room = threading.Semaphore(capacity)
        self._queue: asyncio.Queue[Delivery | Ended] = asyncio.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._released = False

    @classmethod
    def open(
        cls, bus: Bus, topic: str, render: Render, *, after: str | None = None, **options: Any
    ) -> LiveFeed:
        """A reader at the end of ``topic``, or just after the cursor ``after``.

        Blocking (it asks the broker for the partitions' ends): call it from a worker thread.
        A partition the cursor does not name (one added since) is read from its beginning, as
        are partitions added while it reads; an offset the broker no longer holds resumes at the
        earliest it has.
        """
        wanted = None if after is None else parse_cursor(after)
        whole = WholeTopic(bus, topic)
        partitions, consumer = whole.partitions, whole.consumer
        try:
            count = len(partitions)
            if wanted is not None and (beyond := sorted(p for p in wanted if p >= count)):
                raise CursorError(
                    f"the cursor names partition {beyond[0]}, but {topic} has {count} "
                    f"(0 to {count - 1}); it was not written for this feed"
                )
            ends = consumer.end_offsets(partitions)
            positions = {
                p.partition: ends[p] if wanted is None else min(wanted.get(p.partition, 0), ends[p])
                for p in partitions
            }
            for partition in partitions:
                consumer.seek(partition, positions[partition.partition])
        except BaseException:
            consumer.close()
            raise
        return cls(whole, positions, render, **options)

    async def deliveries(self) -> AsyncGenerator[Delivery | Ended]:
        """Each event as it arrives, until the client leaves (or an :class:`Ended`, last)."""
        async with aclosing(self.batches()) as batches:
            async for batch in batches:
                for item in batch:
                    yield item

    async def batches(self, most: int = 256) -> AsyncGenerator[list[Delivery | Ended]]:
        """What has arrived, up to ``most`` at a time once there is one; as deliveries()."""
        self._start(asyncio.get_running_loop())
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < most and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                ended = isinstance(batch[-1], Ended)  # the reader posts nothing after it
                self._room.release(len(batch) - ended)
                yield batch
                if ended:
                    return
        finally:
            self._stopping.set()

    def close(self) -> None:
        """Stop reading and release the consumer; idempotent, from any thread (it may block)."""
        self._stopping.set()
        with self._lock:
            started = self._thread is not None
        if not started:
            self._release()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the reader thread to finish; True when it has (or never started)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("a live feed is read once; open another for another client")
            if self._released:
                raise RuntimeError("this live feed was closed before it was read")
            self._thread = threading.Thread(
                target=self._read, args=(loop,), name=f"live {self.topic}", daemon=True
            )
        self._thread.start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        ended: str | None = None
        try:
            while ended is None and not self._stopping.is_set():
                for partition in self._whole.grow():  # added since: read from its beginning
                    self._positions[partition.partition] = 0
                for message in self._consumer.consume(500, timeout=POLL_SECONDS):
                    delivery = self._delivery(message)
                    if delivery is None:
                        continue
                    if not self._wait_for_room():
                        ended = (
                            f"this client read too slowly: {self.capacity} events waited more "
                            f"than {self.stall_seconds:g}s to be sent; resume from the cursor "
                            f"of the last event received"
                        )
                        break
                    if self._stopping.is_set() or not self._post(loop, delivery):
                        return
        except MeanderError as error:
            ended = f"reading {self.topic} failed: {error}; resume from the last cursor"
        except Exception:
            log.exception("live reader of %s failed", self.topic)
            ended = f"reading {self.topic} failed unexpectedly; resume from the last cursor"
        finally:
            self._release()
            if ended is not None and not self._stopping.is_set():
                self._post(loop, Ended(ended))

    def _delivery(self, message: Message) -> Delivery | None:
        self._positions[message.partition] = message.offset + 1
        try:
            envelope = decode(message, max_bytes=self.max_event_bytes)
        except ContractError:
            return None  # the topic's own consumers dead-letter it; a live client skips it
        data = self.render(envelope)
        return None if data is None else Delivery(format_cursor(self._positions), data)

    def _wait_for_room(self) -> bool:
        """False when the queue stayed full for ``stall_seconds``; True once there is room."""
        deadline = time.monotonic() + self.stall_seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._room.acquire(timeout=min(POLL_SECONDS, remaining)):
                return True
        return True

    def _post(self, loop: asyncio.AbstractEventLoop, item: Delivery | Ended) -> bool:
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is gone
            self._stopping.set()
            return False
        return True

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            self._consumer.close()
        except Exception:
            log.exception("closing the live reader of %s failed", self.topic)
