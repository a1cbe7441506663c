"""Fetched record batches read into Messages, against kafka-python's own reader.

The Messages read back must be what kafka-python reads, whatever the records hold: null keys,
values and header values, lengths that take several varint bytes, timestamps out of order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from meander.bus import Message, Record
from meander.bus.kafka_records import read_batch

HEADER = 61  # bytes of a v2 batch header, before the records

# Long values and many headers take varints of several bytes; they are built, not drawn byte by
# byte, to keep the examples small.
long = st.integers(min_value=64, max_value=20_000).map(lambda n: b"v" * n)
raw = st.binary(max_size=40) | long
names = st.text(max_size=12) | st.integers(64, 200).map(lambda n: "n" * n)
many = st.integers(64, 70).map(lambda n: tuple((f"h{i}", b"x") for i in range(n)))
headers = st.lists(st.tuples(names, st.none() | raw), max_size=6).map(tuple) | many
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
