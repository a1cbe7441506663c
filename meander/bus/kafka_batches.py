"""Records written as whole Kafka record batches and handed to kafka-python's producer as such.

kafka-python's ``KafkaProducer.send`` takes one record at a time and does all of its work in
Python for each: type checks, a size estimate, a lock, the record's bytes, and a future that its
sender thread completes record by record when the broker answers. That was about half of a
predictor's main thread. A component that sends a batch it has already formed (a predictor's
step) gains nothing from it, so :func:`encode_batches` writes the records bound for one
partition as the bodies of record batches (format v2) and :func:`append_batch` hands each to the
producer's accumulator as one unit. From there kafka-python's sender thread takes it like any of
its own: producer id and sequence numbers (idempotence), transactions, retries and
acknowledgements stay kafka-python's, with one future per batch instead of one per record.

A batch is complete when it is handed over, so the sender sends it at once: a lone record never
waits for company (``linger_ms``), and under load each step's output still goes as one batch
per partition.

This reaches into kafka-python 3.0's producer (its accumulator and transaction manager): the one
place meander does on the sending side.

>>> (batch,) = encode_batches([Record("t", b"v", b"k", (("h", b"1"),), None, 1_000)], 1_000_000)
>>> batch.records, batch.first_timestamp, batch.body.hex()
(1, 1000, '18000000026b02760202680231')
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from crc32c import crc32c
from kafka import KafkaProducer
from kafka.codec import gzip_encode, lz4_encode, snappy_encode, zstd_encode
from kafka.errors import IllegalStateError
from kafka.producer.future import FutureProduceResult
from kafka.producer.producer_batch import ProducerBatch
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition as KafkaTopicPartition

from meander.bus.base import Headers, Record

__all__ = ["Encoded", "WholeBatch", "append_batch", "encode_batches"]

# The record batch header (format v2): base offset, length, leader epoch, magic, CRC, attributes,
# last offset delta, first and max timestamps, producer id, epoch, base sequence, record count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC_AT = 17  # the CRC's offset in the header; it covers everything after it
_ATTRIBUTES_AT = 21
_LENGTH_FROM = 12  # the length counts the bytes after the base offset and the length itself
_TRANSACTIONAL = 0x10
# kafka-python's compression attributes (the producer's compression_type) and their codecs.
_COMPRESS = {1: gzip_encode, 2: snappy_encode, 3: lz4_encode, 4: zstd_encode}


def _varint(value: int) -> bytes:
    """Kafka's signed varint (zigzag, then 7 bits a byte, low bits first)."""
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append(0x80 | (zigzag & 0x7F))
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


# Lengths, offset deltas and small timestamp deltas: looked up rather than computed.
_SMALL = tuple(_varint(n) for n in range(1 << 14))
_NULL = _varint(-1)


def _var(value: int, small: tuple[bytes, ...] = _SMALL) -> bytes:
    return small[value] if 0 <= value < 16384 else _varint(value)


_HEADER_NAMES: dict[str, bytes] = {}


def _header_name(name: str) -> bytes:
    encoded = _HEADER_NAMES.get(name)
    if encoded is None:
        raw = name.encode()
        encoded = _var(len(raw)) + raw
        if len(_HEADER_NAMES) < 4096:  # names are few; a stream of unique ones is not cached
            _HEADER_NAMES[name] = encoded
    return encoded


def _record(
    key: bytes | None, value: bytes | None, headers: Headers, timestamp: int, offset: int
) -> bytes:
    """One record as Kafka's ``DefaultRecord`` writes it: its length, then attributes (0),
    timestamp and offset (deltas from the batch's first), key, value and headers, lengths as
    varints (-1 for null)."""
    var, null = _var, _NULL
    fields = [b"\x00", var(timestamp), var(offset)]
    put = fields.append
    if key is None:
        put(null)
    else:
        put(var(len(key)))
        put(key)
    if value is None:
        put(null)
    else:
        put(var(len(value)))
        put(value)
    put(var(len(headers)))
    names = _HEADER_NAMES
    for name, raw in headers:
        put(names.get(name) or _header_name(name))
        if raw is None:
            put(null)
        else:
            put(var(len(raw)))
            put(raw)
    body = b"".join(fields)
    return var(len(body)) + body


class Encoded(NamedTuple):
    """The records' part of one record batch, what its header says of them, and the size of
    its largest record as written."""

    body: bytes
    records: int
    first_timestamp: int
    max_timestamp: int
    largest: int


def encode_batches(records: Sequence[Record], limit: int) -> list[Encoded]:
    """``records`` as the bodies of record batches of at most ``limit`` bytes each (a record
    larger than that gets a batch of its own), in order."""
    batches: list[Encoded] = []
    parts: list[bytes] = []
    size = largest = 0
    first = latest = records[0].timestamp_ms if records else 0
    for record in records:
        stamp = record.timestamp_ms
        encoded = _record(record.key, record.value, record.headers, stamp - first, len(parts))
        if parts and size + len(encoded) > limit:
            batches.append(Encoded(b"".join(parts), len(parts), first, latest, largest))
            parts, size, largest, first, latest = [], 0, 0, stamp, stamp
            encoded = _record(record.key, record.value, record.headers, 0, 0)
        parts.append(encoded)
        size += len(encoded)
        if len(encoded) > largest:
            largest = len(encoded)
        if stamp > latest:
            latest = stamp
    if parts:
        batches.append(Encoded(b"".join(parts), len(parts), first, latest, largest))
    return batches


class WholeBatch:
    """A record batch written whole, standing where kafka-python's accumulator keeps its
    ``MemoryRecordsBuilder``: records come in already written (:meth:`extend`), never one by
    one, and it is sealed (compressed, header and CRC) when the sender drains it, after it has
    set the producer id and the sequence number."""

    def __init__(self, encoded: Encoded, compression: int = 0) -> None:
        body, self._count, self._first_timestamp, self._max_timestamp, _ = encoded
        self._parts = [body]
        self._size = len(body)
        self._compression = compression
        self._attributes = 0
        self._producer = (-1, -1, -1, False)  # id, epoch, base sequence, transactional
        self._buffer: bytearray | None = None

    def extend(self, records: Sequence[Record], limit: int) -> int | None:
        """Add ``records`` after this batch's own, unless it is sealed or they would take it
        over ``limit`` bytes; returns the offset (in the batch) of the first, or None."""
        if self._buffer is not None:
            return None
        first, count = self._first_timestamp, self._count
        parts = [
            _record(r.key, r.value, r.headers, r.timestamp_ms - first, count + i)
            for i, r in enumerate(records)
        ]
        size = self._size + sum(len(part) for part in parts)
        if size > limit:
            return None
        self._parts += parts
        self._size = size
        self._count += len(parts)
        self._max_timestamp = max(self._max_timestamp, *(r.timestamp_ms for r in records))
        return count

    # What the accumulator and the sender ask of a batch's records.
    def append(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # full: a record sent the usual way goes to a batch of its own

    def is_full(self) -> bool:
        return True

    def next_offset(self) -> int:
        return self._count

    def set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int, is_transactional: bool
    ) -> None:
        if self._buffer is not None:
            raise RuntimeError("a sealed record batch cannot change its producer state")
        self._producer = (producer_id, producer_epoch, base_sequence, is_transactional)

    @property
    def producer_id(self) -> int:
        return self._producer[0]

    @property
    def producer_epoch(self) -> int:
        return self._producer[1]

    @property
    def base_sequence(self) -> int:
        return self._producer[2]

    def close(self) -> None:
        if self._buffer is not None:
            return  # a retried batch keeps its bytes: its sequence numbers must not change
        body = b"".join(self._parts)
        if self._compression:
            compressed = _COMPRESS[self._compression](body)
            if len(compressed) < len(body):  # as kafka-python: only when it pays
                body, self._attributes = compressed, self._compression
        producer_id, epoch, sequence, transactional = self._producer
        buffer = bytearray(_HEADER.size) + body
        _HEADER.pack_into(
            buffer,
            0,
            0,  # base offset: the broker's to set
            len(buffer) - _LENGTH_FROM,
            0,  # partition leader epoch: the broker's to set
            2,  # magic
            0,  # CRC, below
            self._attributes | (_TRANSACTIONAL if transactional else 0),
            self._count - 1,
            self._first_timestamp,
            self._max_timestamp,
            producer_id,
            epoch,
            sequence,
            self._count,
        )
        struct.pack_into(">I", buffer, _CRC_AT, crc32c(memoryview(buffer)[_ATTRIBUTES_AT:]))
        self._buffer = buffer
        self._parts = []

    def buffer(self) -> bytearray:
        if self._buffer is None:
            raise RuntimeError("the record batch is not sealed yet")
        return self._buffer

    def records(self) -> MemoryRecords:
        return MemoryRecords(bytes(self.buffer()))

    def size_in_bytes(self) -> int:
        return len(self._buffer) if self._buffer is not None else _HEADER.size + self._size

    def compression_rate(self) -> float:
        return 1.0  # only kafka-python's metrics ask


def append_batch(
    producer: KafkaProducer,
    topic: str,
    partition: int,
    encoded: Encoded,
    records: Sequence[Record],
    limit: int,
) -> tuple[FutureProduceResult, int]:
    """Hand ``records`` (written as ``encoded``) to ``producer``'s accumulator for
    ``topic[partition]``, where its sender thread finds them (wake it afterwards:
    ``producer._sender.wakeup()``); returns the future of the batch they went into and the
    offset of the first in that batch.

    When the partition's last batch is still waiting to be sent (the sender is busy, or the
    broker has as many requests in flight as it may), the records go at its end if it has room
    for them: batches form under load without any lone record waiting for company.

    The future completes with ``(base_offset, log_append_time, errors)``: ``errors`` is None
    when the broker stored the batch, else a function from a record's index to its error.
    """
    accumulator = producer._accumulator
    if producer._closed or accumulator._closed:
        raise IllegalStateError("the Kafka producer is closed")
    if accumulator.config["message_version"] < 2:
        raise IllegalStateError("record batches need a broker of Kafka 0.11 or later")
    tp = KafkaTopicPartition(topic, partition)
    transactions = producer._transaction_manager
    if transactions is not None and transactions.is_transactional():
        transactions.maybe_add_partition_to_transaction(tp)
    # As the accumulator's own append does: counted while appending (a forced close waits for
    # appends in progress), and under the partition's lock, which its drain takes too.
    accumulator._appends_in_progress.increment()
    try:
        with accumulator._tp_lock(tp):
            if accumulator._closed:
                raise IllegalStateError("the Kafka producer is closed")
            queue = accumulator._batches[tp]
            last = queue[-1] if queue else None
            if last is not None and last.attempts == 0 and isinstance(last.records, WholeBatch):
                at = last.records.extend(records, limit)
                if at is not None:
                    return last.produce_future, at
            compression = accumulator.config["compression_attrs"]
            batch = ProducerBatch(tp, WholeBatch(encoded, compression), now=time.monotonic())
            queue.append(batch)
            accumulator._incomplete.add(batch)
            return batch.produce_future, 0
    finally:
        accumulator._appends_in_progress.decrement()
