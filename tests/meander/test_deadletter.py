"""Nothing undecodable is dropped: it reaches meander.deadletter whole, with its reason."""

from __future__ import annotations

import time
import uuid

import pytest

from meander import topics
from meander.bus import Bus, MemoryBroker, MemoryBus, Message, Record, TopicPartition
from meander.deadletter import DeadLetters
from meander.events import DeadLetter, FeatureEvent, decode, decode_batch, encode


def read_all(bus: Bus, topic: str, count: int) -> list[Message]:
    received: list[Message] = []
    deadline = time.monotonic() + 30
    with bus.assign([TopicPartition(topic, 0)]) as reader:
        while len(received) < count and time.monotonic() < deadline:
            received.extend(reader.consume(timeout=0.5))
    return received


def run_reader(bus: Bus) -> None:
    stream = f"dl{uuid.uuid4().hex[:8]}"
    bus.create_topics({topics.events(stream): 1, topics.DEADLETTER: 1})
    with bus.assign([TopicPartition(topics.DEADLETTER, 0)]) as probe:
        start = probe.end_offsets([TopicPartition(topics.DEADLETTER, 0)])
    good = encode(topics.events(stream), FeatureEvent(features={"x": 1.0}), source="/t")
    garbage = Record(topics.events(stream), b"\x00\xffnot an event", key=b"k")
    huge = Record(topics.events(stream), good.value + b" " * 5_000, headers=good.headers)
    bus.publish([good, garbage, huge, good])

    dead = DeadLetters(bus, component="test")
    messages = read_all(bus, topics.events(stream), 4)
    decoded, rejected = decode_batch(messages, max_bytes=2_000)
    dead.send(rejected)

    assert len(decoded) == 2 and dead.count == 2
    partition = TopicPartition(topics.DEADLETTER, 0)
    with bus.assign([partition]) as reader:
        reader.seek(partition, start[partition])
        letters = []
        deadline = time.monotonic() + 30
        while len(letters) < 2 and time.monotonic() < deadline:
            letters.extend(reader.consume(timeout=0.5))
    payloads = [decode(m).payload for m in letters]
    assert all(isinstance(p, DeadLetter) for p in payloads)
    first, second = payloads
    assert isinstance(first, DeadLetter) and isinstance(second, DeadLetter)
    assert first.original_value() == b"\x00\xffnot an event"
    assert (first.topic, first.offset, first.component) == (topics.events(stream), 1, "test")
    assert first.reason.startswith("not JSON (") and "and no ce_* headers: send" in first.reason
    assert second.reason == f"value of {len(huge.value)} bytes exceeds the limit of 2000"
    assert second.original_value() == huge.value


def test_rejected_messages_reach_the_embedded_dead_letter_topic() -> None:
    run_reader(MemoryBus(MemoryBroker()))


@pytest.mark.integration
def test_rejected_messages_reach_the_kafka_dead_letter_topic(kafka_bootstrap: str) -> None:
    from meander.bus.kafka import KafkaBus

    with KafkaBus(kafka_bootstrap) as bus:
        run_reader(bus)


def test_a_value_too_large_to_keep_whole_is_truncated_and_says_so() -> None:
    bus = MemoryBus(MemoryBroker(), max_message_bytes=10_000)
    bus.create_topics({topics.DEADLETTER: 1})
    big = Message("s.events", 0, 0, None, b"y" * 9_000, (), 0)
    DeadLetters(bus, component="test").send([(big, "too big")])
    (letter,) = read_all(bus, topics.DEADLETTER, 1)
    payload = decode(letter).payload
    assert isinstance(payload, DeadLetter)
    assert (payload.size, payload.truncated, len(payload.original_value())) == (9_000, True, 5_000)


def test_a_key_headers_or_a_reason_too_large_to_keep_whole_are_cut_to_fit() -> None:
    """Any client can write a record whose key or headers alone would not fit, base64-encoded,
    on the dead-letter topic: each part is cut so the whole dead letter does."""
    bus = MemoryBus(MemoryBroker(), max_message_bytes=10_000)
    bus.create_topics({topics.DEADLETTER: 1})
    headers = (("ce_id", b"e1"), ("junk", b"z" * 9_000), *[("j", b"")] * 2_000)
    records = [
        (Message("s.events", 0, 0, b"k" * 9_000, b"v" * 9_000, (), 0), "a big key"),
        (Message("s.events", 0, 1, b"k", b"v", headers, 0), "big headers"),
        (Message("s.events", 0, 2, None, b"v", (), 0), "unknown feature '" + "a" * 9_000),
    ]
    DeadLetters(bus, component="test").send(records)
    letters = [decode(m).payload for m in read_all(bus, topics.DEADLETTER, 3)]
    assert all(isinstance(p, DeadLetter) and p.truncated for p in letters)
    key, many, reason = letters
    assert isinstance(key, DeadLetter) and isinstance(many, DeadLetter)
    assert isinstance(reason, DeadLetter)
    assert (len(key.original_value() or b""), key.size) == (5_000 - 1_250, 9_000)
    assert many.headers_b64[0] == ("ce_id", "ZTE=") and many.original_value() == b"v"
    assert len(reason.reason) == 1_003 and reason.original_value() == b"v"
