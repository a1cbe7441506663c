"""Record batches as meander writes them and reads them, against kafka-python's own builder and
reader.

The bytes a batch is written as must be the ones kafka-python would write for the same records
(the broker checks them, and every other client reads them), and the Messages read back must be
what kafka-python reads, whatever the records hold: null keys, values and header values, lengths
that take several varint bytes, timestamps out of order, compressed batches.
"""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from meander.bus import Message, Record
from meander.bus.kafka_batches import WholeBatch, encode_batches
from meander.bus.kafka_records import read_batch
from meander.events import Feedback, encode

HEADER = 61  # bytes of a v2 batch header, before the records

# Long values and many headers take varints of several bytes; they are built, not drawn byte by
# byte, to keep the examples small.
long = st.integers(min_value=64, max_value=20_000).map(lambda n: b"v" * n)
raw = st.binary(max_size=40) | long
names = st.text(max_size=12) | st.integers(64, 200).map(lambda n: "n" * n)
many = st.integers(64, 70).map(lambda n: tuple((f"h{i}", b"x") for i in range(n)))
headers = st.lists(st.tuples(names, st.none() | raw), max_size=6).map(tuple) | many
# Headers as meander.events.encode writes them (read by a path of their own), and near misses:
# a name, a fixed value or the count changed, a value null or of 64 bytes or more.
value = st.none() | raw
written = st.builds(
    lambda event_id, source, kind, time, spec, content: (
        ("ce_specversion", spec),
        ("ce_id", event_id),
        ("ce_source", source),
        ("ce_type", kind),
        ("ce_time", time),
        ("content-type", content),
    ),
    value,
    value,
    value,
    value,
    st.just(b"1.0") | raw,
    st.just(b"application/json") | raw,
)
renamed = st.tuples(written, st.integers(0, 5), names).map(
    lambda w: tuple((w[2], v) if i == w[1] else (n, v) for i, (n, v) in enumerate(w[0]))
)
headers |= written | renamed | st.tuples(written, headers).map(lambda w: w[0] + w[1])
records = st.lists(
    st.builds(
        Record,
        topic=st.just("t"),
        value=raw,
        key=st.none() | raw,
        headers=headers,
        timestamp_ms=st.integers(min_value=0, max_value=2**41),
    ),
    min_size=1,
    max_size=20,
)


def _kafka_python(batch: list[Record], producer: tuple[int, int, int]) -> bytes:
    builder = DefaultRecordBatchBuilder(2, 0, False, *producer, batch_size=1 << 30)
    for offset, record in enumerate(batch):
        builder.append(offset, record.timestamp_ms, record.key, record.value, list(record.headers))
    return bytes(builder.build())


@settings(max_examples=60, deadline=None)
@given(records, st.integers(0, 2**40), st.integers(0, 2**30))
def test_messages_read_from_a_batch_are_what_kafka_python_reads(
    batch: list[Record], base_offset: int, partition: int
) -> None:
    data = bytearray(_kafka_python(batch, (-1, -1, -1)))
    data[:8] = base_offset.to_bytes(8, "big")
    reference = DefaultRecordBatch(bytes(data))
    expected = [
        Message("t", partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp)
        for r in reference
    ]
    read = read_batch(
        bytes(data[HEADER:]),
        "t",
        partition,
        base_offset=base_offset,
        first_timestamp=batch[0].timestamp_ms,
        count=len(batch),
    )
    assert list(read) == expected


@settings(max_examples=60, deadline=None)
@given(records, st.tuples(st.integers(0, 2**40), st.integers(0, 2**10), st.integers(0, 2**30)))
def test_a_whole_batch_is_the_batch_kafka_python_writes(
    batch: list[Record], producer: tuple[int, int, int]
) -> None:
    (encoded,) = encode_batches(batch, limit=1 << 30)
    written = WholeBatch(encoded)
    written.set_producer_state(*producer, False)
    written.close()
    assert bytes(written.buffer()) == _kafka_python(batch, producer)
    assert written.next_offset() == len(batch)
    longest = max(r.size_in_bytes for r in DefaultRecordBatch(bytes(written.buffer())))
    assert longest < encoded.largest <= longest + 5  # with the record's own length varint


def test_batches_are_cut_at_the_limit_and_a_large_record_goes_alone() -> None:
    small = [Record("t", b"x" * 100, timestamp_ms=5) for _ in range(30)]
    large = Record("t", b"y" * 5_000, timestamp_ms=9)
    batches = encode_batches([*small[:10], large, *small[10:]], limit=1_000)
    # Nine small records fill 1,000 bytes; the tenth goes alone before the large one.
    assert [b.records for b in batches] == [9, 1, 1, 9, 9, 2]
    assert sum(b.records for b in batches) == 31
    assert batches[2].records == 1 and batches[2].largest > 5_000
    assert all(len(b.body) <= 1_000 for i, b in enumerate(batches) if i != 2)


def test_a_compressed_batch_reads_back_as_written() -> None:
    batch = [Record("t", b"repeated value " * 20, b"k", (("h", b"v"),), None, 7)] * 50
    (encoded,) = encode_batches(batch, limit=1 << 20)
    written = WholeBatch(encoded, compression=1)  # gzip
    written.set_producer_state(-1, -1, -1, False)
    written.close()
    assert len(written.buffer()) < len(encoded.body) // 5
    reread = DefaultRecordBatch(bytes(written.buffer()))
    assert reread.validate_crc() and reread.compression_type == 1
    assert [(r.key, r.value, r.headers) for r in reread] == [
        (b"k", b"repeated value " * 20, [("h", b"v")])
    ] * 50
    assert gzip.decompress(bytes(written.buffer()[HEADER:])) == encoded.body


def test_a_sealed_batch_keeps_its_producer_state() -> None:
    (encoded,) = encode_batches([Record("t", b"v", timestamp_ms=1)], limit=1 << 20)
    written = WholeBatch(encoded)
    written.set_producer_state(42, 3, 100, True)
    written.close()
    sealed = DefaultRecordBatch(bytes(written.buffer()))
    assert (sealed.producer_id, sealed.producer_epoch, sealed.base_sequence) == (42, 3, 100)
    assert sealed.is_transactional
    written.close()  # a retried batch is sealed again: nothing changes
    assert bytes(written.buffer()) == bytes(DefaultRecordBatch(bytes(written.buffer()))._buffer)
    with pytest.raises(RuntimeError, match="sealed"):
        written.set_producer_state(43, 3, 100, True)


@settings(max_examples=40, deadline=None)
@given(records, records)
def test_a_batch_extended_while_it_waits_is_the_batch_kafka_python_writes(
    first: list[Record], then: list[Record]
) -> None:
    (encoded,) = encode_batches(first, limit=1 << 30)
    written = WholeBatch(encoded)
    assert written.extend(then, limit=1 << 30) == len(first)
    written.set_producer_state(7, 1, 0, False)
    written.close()
    assert bytes(written.buffer()) == _kafka_python([*first, *then], (7, 1, 0))
    assert written.extend(then, limit=1 << 30) is None  # sealed: sent as it is


def test_a_batch_is_not_extended_past_its_limit() -> None:
    (encoded,) = encode_batches([Record("t", b"x" * 100, timestamp_ms=1)], limit=1_000)
    written = WholeBatch(encoded)
    assert written.extend([Record("t", b"y" * 2_000, timestamp_ms=2)], limit=1_000) is None
    assert written.extend([Record("t", b"z" * 100, timestamp_ms=2)], limit=1_000) == 1
    assert written.next_offset() == 2


def test_records_as_encode_writes_them_read_back_with_their_headers() -> None:
    written = [
        encode("t", Feedback(event_id=f"e{i}", label=i % 2 == 0), source="/s" * i)
        for i in range(40)  # sources of 0 to 78 bytes: read by position, then one by one
    ]
    (batch,) = encode_batches(written, 1 << 20)
    read = read_batch(
        batch.body,
        "t",
        0,
        base_offset=0,
        first_timestamp=batch.first_timestamp,
        count=batch.records,
    )
    assert [(m.key, m.value, m.headers) for m in read] == [
        (r.key, r.value, r.headers) for r in written
    ]
