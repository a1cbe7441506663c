"""Fetched record batches read straight into the bus's Messages.

kafka-python reads each record of a fetched batch in Python, varint by varint through a
function call each, into a record object, then into a ``ConsumerRecord`` (computing the size
of its headers on the way), which the bus then copied into a :class:`~meander.bus.Message`:
three objects per record, and over a third of a learner's CPU (it reads three records per
label). :class:`MessageRecords` takes the place of kafka-python's per-partition record reader
in a consumer's fetcher and reads each record of an uncompressed or decompressed batch
(format v2) once, into a Message, with single-byte varints (most lengths) read inline, and
the six headers meander's own ``encode`` writes read by position when they are exactly those
(a fifth less CPU a record than reading them one by one: 3.0 - 3.2 against 3.9 - 4.0 us for a
label).

Everything around the records stays kafka-python's: the fetch itself, CRC checks, skipping
aborted transactions (``read_committed``) and control batches, positions and offsets. Batches
of the older formats (v0, v1) go through kafka-python's own reader. This reaches into kafka-python
3.0's fetcher (its ``PartitionRecords``); :func:`read_into_messages` is where it is installed.

>>> from kafka.record.default_records import DefaultRecordBatchBuilder
>>> builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 1 << 20)
>>> _ = builder.append(0, 1_000, b"k", b"v", [("h", b"1")])
>>> batch = bytes(builder.build())
>>> (message,) = read_batch(batch[61:], "t", 0, base_offset=40, first_timestamp=1_000, count=1)
>>> message.offset, message.key, message.value, message.headers, message.timestamp_ms
(40, b'k', b'v', (('h', b'1'),), 1000)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel

from meander.bus.base import Headers, Message

__all__ = ["MessageRecords", "read_batch", "read_into_messages"]

_LOG_APPEND_TIME = 1

_NAMES: dict[bytes, str] = {}


def _name(raw: bytes) -> str:
    name = _NAMES.get(raw)
    if name is None:
        name = raw.decode(errors="replace")  # as the Java client reads a name not in UTF-8
        if len(_NAMES) < 4096:  # names are few; a stream of unique ones is not cached
            _NAMES[raw] = name
    return name


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A signed varint (zigzag) at ``at``; returns it and the position after it."""
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), at
        shift += 7
        if shift > 63:
            raise CorruptRecordError("a varint longer than 10 bytes: the batch is corrupt")


# The headers meander.events.encode writes, in its order, as they are written: name lengths
# and names, and the values that never change (lengths are zigzag varints: 2n).
_SPEC_ID = b"\x1cce_specversion\x061.0\x0ace_id"
_AFTER_SPEC_ID = len(_SPEC_ID)
_SOURCE = b"\x12ce_source"
_TYPE = b"\x0ece_type"
_TIME = b"\x0ece_time"
_CONTENT = b"\x18content-type\x20application/json"
# What follows the values of ce_id, ce_source, ce_type and ce_time, in turn.
_FOLLOWING = tuple((name, len(name)) for name in (_SOURCE, _TYPE, _TIME, _CONTENT))
_SPEC_HEADER = ("ce_specversion", b"1.0")
_CONTENT_HEADER = ("content-type", b"application/json")


def _as_written(data: bytes, at: int) -> tuple[Headers, int] | None:
    """The six headers as encode writes them, from ce_id's value length at ``at`` on, and the
    position after them; None when they are anything else, to be read one by one."""
    values = []
    for follows, length in _FOLLOWING:
        size = data[at]
        if size & 0x81:  # a value of 64 bytes or more (two-byte length), or a null one
            return None
        at += 1
        end = at + (size >> 1)
        values.append(data[at:end])
        if not data.startswith(follows, end):
            return None
        at = end + length
    event_id, source, kind, time = values
    headers = (
        _SPEC_HEADER,
        ("ce_id", event_id),
        ("ce_source", source),
        ("ce_type", kind),
        ("ce_time", time),
        _CONTENT_HEADER,
    )
    return headers, at


def read_batch(
    data: bytes,
    topic: str,
    partition: int,
    *,
    base_offset: int,
    first_timestamp: int,
    count: int,
    timestamp: int | None = None,
) -> Iterator[Message]:
    """The ``count`` records of a v2 batch whose records (after its 61-byte header, and after
    decompression) are ``data``, as Messages. ``timestamp`` is the batch's time for every
    record when the broker stamps them (log append time)."""
    at = 0
    names = _NAMES
    for _ in range(count):
        # length, attributes (1 byte), timestamp delta, offset delta, key, value, headers
        byte = data[at]
        if byte < 0x80:
            length, at = (byte >> 1) ^ -(byte & 1), at + 1
        else:
            length, at = _varint(data, at)
        end = at + length
        at += 1
        byte = data[at]
        if byte < 0x80:
            stamp, at = (byte >> 1) ^ -(byte & 1), at + 1
        else:
            stamp, at = _varint(data, at)
        byte = data[at]
        if byte < 0x80:
            delta, at = (byte >> 1) ^ -(byte & 1), at + 1
        else:
            delta, at = _varint(data, at)
        byte = data[at]
        if byte < 0x80:
            size, at = (byte >> 1) ^ -(byte & 1), at + 1
        else:
            size, at = _varint(data, at)
        key = None
        if size >= 0:
            key = data[at : at + size]
            at += size
        byte = data[at]
        if byte < 0x80:
            size, at = (byte >> 1) ^ -(byte & 1), at + 1
        else:
            size, at = _varint(data, at)
        value: Any = None
        if size >= 0:
            value = data[at : at + size]
            at += size
        byte = data[at]
        if byte < 0x80:
            pairs, at = (byte >> 1) ^ -(byte & 1), at + 1
        else:
            pairs, at = _varint(data, at)
        headers: Headers = ()
        if pairs == 6 and data.startswith(_SPEC_ID, at):
            written = _as_written(data, at + _AFTER_SPEC_ID)
            if written is not None:
                headers, at = written
                pairs = 0
        if pairs:
            found: list[tuple[str, Any]] = []
            for _ in range(pairs):
                byte = data[at]
                if byte < 0x80:
                    size, at = byte >> 1, at + 1
                else:
                    size, at = _varint(data, at)
                raw = data[at : at + size]
                at += size
                name = names.get(raw) or _name(raw)
                byte = data[at]
                if byte < 0x80:
                    size, at = (byte >> 1) ^ -(byte & 1), at + 1
                else:
                    size, at = _varint(data, at)
                if size >= 0:
                    found.append((name, data[at : at + size]))
                    at += size
                else:
                    found.append((name, None))
            headers = tuple(found)
        if at != end or pairs < 0:
            raise CorruptRecordError(
                f"a record of {topic}[{partition}] at offset {base_offset + delta} does not "
                f"add up: {at - end:+d} bytes against its length"
            )
        yield Message(
            topic,
            partition,
            base_offset + delta,
            key,
            value,
            headers,
            first_timestamp + stamp if timestamp is None else timestamp,
        )
    if at != len(data):
        raise CorruptRecordError(f"{len(data) - at} bytes after the last record of a batch")


class MessageRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's reader of one partition's fetched records, yielding Messages."""

    def _unpack_records(
        self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[Any]:
        topic, partition = tp
        batch = records.next_batch()
        while batch is not None:
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"record batch for {topic}[{partition}] at offset {batch.base_offset} "
                    "failed its CRC check"
                )
            if batch.magic < 2:  # the old formats: kafka-python reads them
                yield from self._older(tp, batch, key_deserializer, value_deserializer)
            elif self._wanted(batch):
                batch._maybe_uncompress()
                data = bytes(memoryview(batch._buffer)[batch._pos :])
                stamp = batch.max_timestamp if batch.timestamp_type == _LOG_APPEND_TIME else None
                self.leader_epoch = batch.leader_epoch
                for message in read_batch(
                    data,
                    topic,
                    partition,
                    base_offset=batch.base_offset,
                    first_timestamp=batch.first_timestamp,
                    count=batch.records_count,
                    timestamp=stamp,
                ):
                    self.records_read += 1
                    self.next_fetch_offset = message.offset + 1
                    yield message
                self.bytes_read += batch.size_in_bytes
            else:
                self.leader_epoch = batch.leader_epoch
            # A v2 batch keeps its last offset even when compaction removed its last record.
            if batch.magic >= 2:
                self.next_fetch_offset = batch.next_offset
            batch = records.next_batch()
        self.drain()

    def _wanted(self, batch: Any) -> bool:
        """False for a control batch, and for a batch of an aborted transaction when only
        committed records are read; updates what is known of aborted transactions."""
        if self.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
            self._consume_aborted_transactions_up_to(batch.last_offset)
            if self._contains_abort_marker(batch):
                self.aborted_producer_ids.discard(batch.producer_id)
                return False
            if self._is_batch_aborted(batch):
                return False
        return not batch.is_control_batch

    def _older(
        self, tp: Any, batch: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[Message]:
        for record in batch:
            self.records_read += 1
            self.bytes_read += record.size_in_bytes
            self.next_fetch_offset = record.offset + 1
            yield Message(
                tp.topic,
                tp.partition,
                record.offset,
                self._deserialize(key_deserializer, tp.topic, record.headers, record.key),
                self._deserialize(value_deserializer, tp.topic, record.headers, record.value),
                tuple(record.headers),
                record.timestamp,
            )


def read_into_messages(consumer: KafkaConsumer) -> KafkaConsumer:
    """Have ``consumer``'s polls return Messages, read by :class:`MessageRecords`."""
    consumer._fetcher.PartitionRecords = MessageRecords
    return consumer
