"""What travels on the bus: a :class:`Record` written, a :class:`Message` read (a record with its
place in the log), and the :class:`TopicPartition` it lives in. Every backend builds these, so
they are slotted and set field by field (a backend makes one per record it reads)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple

__all__ = [
    "UNREADABLE",
    "Headers",
    "Message",
    "ReadHeaders",
    "Record",
    "TopicPartition",
    "next_offsets",
    "unreadable",
]

Headers = tuple[tuple[str, bytes], ...]
ReadHeaders = tuple[tuple[str, bytes | None], ...]
"""Headers as read: Kafka lets a writer give a header a null value."""


class TopicPartition(NamedTuple):
    topic: str
    partition: int


def _now_ms() -> int:
    return int(time.time() * 1000)


# Every event is built as a Record and stored or read as a Message, often several times over. A
# frozen dataclass's generated __init__ sets each field through object.__setattr__; the slots' own
# setters do the same in half the time, so these two write their __init__ out.


@dataclass(frozen=True, slots=True, init=False)
class Record:
    """A message to publish. ``partition`` None lets the key (or the bus) choose; a
    ``timestamp_ms`` of None is now."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None
    timestamp_ms: int = field(default_factory=_now_ms)

    def __init__(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        set_topic, set_value, set_key, set_headers, set_partition, set_timestamp = _RECORD_SLOTS
        set_topic(self, topic)
        set_value(self, value)
        set_key(self, key)
        set_headers(self, headers)
        set_partition(self, partition)
        set_timestamp(self, _now_ms() if timestamp_ms is None else timestamp_ms)

    def size(self) -> int:
        """Bytes on the wire, near enough to enforce the size limit the same on every bus."""
        size = len(self.value) + len(self.key or b"")
        for name, value in self.headers:  # a plain loop: half the time of sum() over a generator
            size += len(name) + len(value)
        return size


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """A consumed record, with where it was read. Any Kafka client can write a null value (a
    tombstone) or a header with a null value: readers must expect both."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: ReadHeaders
    timestamp_ms: int

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: ReadHeaders,
        timestamp_ms: int,
    ) -> None:
        set_topic, set_partition, set_offset, set_key, set_value, set_headers, set_timestamp = (
            _MESSAGE_SLOTS
        )
        set_topic(self, topic)
        set_partition(self, partition)
        set_offset(self, offset)
        set_key(self, key)
        set_value(self, value)
        set_headers(self, headers)
        set_timestamp(self, timestamp_ms)

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


UNREADABLE = "meander-unreadable"
"""The header of a message standing for a record the client could not parse: its value says
why. The message has no key, no value and no other header; its offset is the record's."""


def unreadable(message: Message) -> str | None:
    """Why the client could not parse the record ``message`` stands for; None for any other.

    >>> unreadable(Message("t", 0, 7, None, None, ((UNREADABLE, b"bad header name"),), -1))
    'bad header name'
    """
    if message.value is None and len(message.headers) == 1:
        name, why = message.headers[0]
        if name == UNREADABLE and why is not None:
            return why.decode("utf-8", "replace")
    return None


def _slot_setters(cls: type) -> tuple[Callable[[object, object], None], ...]:
    """The setter of each field's slot in a slotted dataclass, in field order."""
    return tuple(getattr(cls, f.name).__set__ for f in fields(cls))


def next_offsets(messages: Sequence[Message]) -> dict[TopicPartition, int]:
    """The offsets to commit once ``messages`` are handled: one past the last of each partition.

    >>> read = [Message("t", 0, offset, None, b"", (), 0) for offset in (4, 6)]
    >>> next_offsets(read)
    {TopicPartition(topic='t', partition=0): 7}
    """
    offsets: dict[TopicPartition, int] = {}
    for message in messages:
        partition = message.topic_partition
        offsets[partition] = max(offsets.get(partition, 0), message.offset + 1)
    return offsets


_RECORD_SLOTS = _slot_setters(Record)
_MESSAGE_SLOTS = _slot_setters(Message)
