"""The store's changelog: what Redis holds that matters, kept in a compacted Kafka topic.

Kafka is the system of record and Redis the fast store, the way Kafka Streams keeps each state
store's changelog in a compacted topic. Every write that matters (the registry's versions, blobs
and aliases, the learner's checkpoints and its lease epochs) is made in Redis first and then
recorded here, keyed by the Redis key it changed (and the hash field or sorted-set member, for
writes of one field), so that compaction keeps the latest value of each. A store that lost its
data is rebuilt by :func:`restore`, which reads the topic to its end.

Of two records for the same key, the one with the higher ``order`` wins, then the later one. A
fenced writer records its lease epoch there, so a late write of a learner that lost its lease
never replaces its successor's; a counter records its value, so the highest one wins.

>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.store import memory_store
>>> import fakeredis
>>> bus = MemoryBus(MemoryBroker()); bus.create_topics({"meander.state": 1})
>>> log = Changelog(bus, "meander.state")
>>> log.set("k", b"new", order=2); log.set("k", b"late", order=1); log.zadd("z", "3", 3.0)
>>> store = memory_store(fakeredis.FakeServer())
>>> restore(store, bus, "meander.state")
2
>>> store.get("k"), store.zrange("z", 0, -1, withscores=True)
(b'new', [(b'3', 3.0)])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import redis

from meander.bus import Bus, Message, Record, Sending, TopicPartition
from meander.exceptions import BusError, MessageTooLarge

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["Changelog", "restore"]

log = logging.getLogger(__name__)
_SEPARATOR = "\x00"  # between a key and its field or member: never part of a Redis key of ours
_OPS = ("set", "del", "hset", "zadd", "zset")


class Changelog:
    """Records Redis writes on a compacted topic: sends without waiting, and sends again what
    Kafka did not take (a broker outage) on the next write or :meth:`settle`, so a write that
    Redis took is never lost to Kafka while the process lives."""

    def __init__(self, bus: Bus, topic: str) -> None:
        self.bus, self.topic = bus, topic
        # Per key, its latest record and its sending (None: not handed to the bus yet).
        self._pending: dict[bytes, tuple[Record, Sending | None]] = {}
        # Keys whose latest record is over the topic's size limit: it waits for a newer value.
        self._too_large: set[bytes] = set()

    def set(self, key: str, value: bytes, *, order: int = 0) -> None:
        """``key`` now holds the string ``value``."""
        self._send(key, "set", value, order)

    def delete(self, key: str, *, order: int = 0) -> None:
        """``key`` no longer exists."""
        self._send(key, "del", b"", order)

    def hset(self, key: str, field: str, value: bytes, *, order: int = 0) -> None:
        """Field ``field`` of the hash ``key`` now holds ``value``."""
        self._send(f"{key}{_SEPARATOR}{field}", "hset", value, order)

    def zadd(self, key: str, member: str, score: float, *, order: int = 0) -> None:
        """Member ``member`` of the sorted set ``key`` now has ``score``."""
        self._send(f"{key}{_SEPARATOR}{member}", "zadd", repr(float(score)).encode(), order)

    def zset(self, key: str, members: Mapping[str, float], *, order: int = 0) -> None:
        """The sorted set ``key`` now holds exactly ``members``."""
        self._send(key, "zset", orjson.dumps(dict(members)), order)

    @property
    def pending(self) -> int:
        """Records not yet known to be in Kafka."""
        return len(self._pending)

    def settle(self) -> int:
        """Forget what Kafka acknowledged, send again what it refused or never got; returns how
        many records are still on their way. Never blocks."""
        for key, (record, sending) in list(self._pending.items()):
            if key in self._too_large:
                continue
            if sending is None:
                try:
                    sending = self.bus.send([record])
                except MessageTooLarge as error:
                    # Never storable as it is: it waits for a newer value of its key, without
                    # holding back the records of the other keys.
                    log.error("changelog %s not sent (%s); it waits for a newer value", key, error)
                    self._too_large.add(key)
                    continue
                except BusError as error:  # the broker is down: try again later
                    log.warning("changelog %s not sent (%s); it waits", key, error)
                    break
                self._pending[key] = (record, sending)
            if not sending.done():
                continue
            try:
                sending.wait(0)
            except BusError as error:
                log.warning("changelog %s not stored (%s); it is sent again", key, error)
                self._pending[key] = (record, None)
            else:
                del self._pending[key]
        return len(self._pending)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until Kafka has every record sent so far; BusError when it has not in time."""
        deadline = time.monotonic() + timeout
        while self.settle():
            if time.monotonic() > deadline:
                raise BusError(
                    f"{len(self._pending)} changelog record(s) not stored in {timeout:g} s"
                )
            time.sleep(0.01)

    def _send(self, name: str, op: str, value: bytes, order: int) -> None:
        record = Record(
            self.topic,
            value,
            key=name.encode(),
            headers=(("op", op.encode()), ("order", b"%d" % order)),
        )
        # A newer value of a key replaces the one still waiting: compaction would drop it.
        self._pending[record.key or b""] = (record, None)
        self._too_large.discard(record.key or b"")
        self.settle()


@dataclass(frozen=True, slots=True)
class _Entry:
    op: str
    value: bytes
    order: int
    offset: int


def restore(store: redis.Redis[bytes], bus: Bus, topic: str) -> int:
    """Write the latest value of every key recorded on ``topic`` into ``store``; returns how
    many keys (or fields, or members) it wrote."""
    latest: dict[str, _Entry] = {}
    for message in _read_to_end(bus, topic):
        entry = _entry(message)
        if entry is None or message.key is None:
            continue
        name = message.key.decode()
        held = latest.get(name)
        if held is None or (entry.order, entry.offset) >= (held.order, held.offset):
            latest[name] = entry
    with store.pipeline(transaction=False) as pipe:
        for name, entry in latest.items():
            _apply(pipe, name, entry)
        pipe.execute()
    return len(latest)


def _apply(pipe: Pipeline[bytes], name: str, entry: _Entry) -> None:
    key, _, part = name.partition(_SEPARATOR)
    if entry.op == "set":
        pipe.set(key, entry.value)
    elif entry.op == "del":
        pipe.delete(key)
    elif entry.op == "hset":
        pipe.hset(key, part, entry.value)
    elif entry.op == "zadd":
        pipe.zadd(key, {part: float(entry.value)})
    else:
        pipe.delete(key)
        members = orjson.loads(entry.value)
        if members:
            pipe.zadd(key, members)


def _entry(message: Message) -> _Entry | None:
    headers = dict(message.headers)
    op = (headers.get("op") or b"").decode()
    value = message.value
    if op not in _OPS or (value is None and op != "del"):
        log.warning(
            "changelog %s[%d]@%d: unknown op %r, or a null value; skipped",
            message.topic,
            message.partition,
            message.offset,
            op,
        )
        return None
    return _Entry(op, value or b"", int(headers.get("order") or b"0"), message.offset)


def _read_to_end(bus: Bus, topic: str) -> list[Message]:
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    with bus.assign(partitions) as consumer:
        ends = consumer.end_offsets(partitions)
        found: list[Message] = []
        while any(consumer.position(p) < ends[p] for p in partitions):
            found.extend(consumer.consume(1_000, 0.5))
        return found
