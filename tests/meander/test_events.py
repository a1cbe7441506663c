"""The event contracts against the official CloudEvents SDK, in both directions."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from meander.bus import Message, Record
from meander.events import (
    PAYLOADS,
    Alert,
    DeadLetter,
    FeatureEvent,
    Feedback,
    ModelEvent,
    Payload,
    Prediction,
    decode,
    decode_batch,
    encode,
)
from meander.exceptions import ContractError

EXAMPLES: list[Payload] = [
    FeatureEvent(id="e1", features={"amount": 12.5, "country": "FR", "new": True, "age": None}),
    Prediction(
        event_id="e1",
        model="fraud",
        version=3,
        prediction=True,
        probabilities={"True": 0.8, "False": 0.2},
        latency_ms=1.5,
    ),
    Feedback(event_id="e1", label=False),
    Alert(
        kind="data_drift",
        stream="fraud",
        severity="warning",
        statistic="adwin_mean",
        value=0.4,
        feature="amount",
        window=1000,
    ),
    ModelEvent(
        action="promoted",
        stream="fraud",
        model="fraud",
        version=4,
        previous_version=3,
        reason="challenger beat champion",
        evidence={"gain": 0.03, "p_value": 0.001},
    ),
    DeadLetter.of(
        Message("fraud.events", 1, 9, b"k", b"\xff\x00garbage", (("h", b"v"),), 0),
        reason="not JSON",
        component="predictor",
    ),
]


def as_message(record: Record) -> Message:
    return Message(
        record.topic, 0, 0, record.key, record.value, record.headers, record.timestamp_ms
    )


def sdk_message(record: Record) -> ce_kafka.KafkaMessage:
    return ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)


def test_every_topic_has_an_example() -> None:
    assert {type(p).type for p in EXAMPLES} == set(PAYLOADS)


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: type(p).__name__)
def test_the_sdk_reads_what_we_write(payload: Payload) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = encode(
        "t", payload, source="/meander/test", subject="fraud", event_id="id-1", time=moment
    )
    event = ce_kafka.from_binary_event(sdk_message(record))
    assert event.get_specversion() == "1.0"
    assert event.get_id() == "id-1"
    assert event.get_source() == "/meander/test"
    assert event.get_type() == type(payload).type
    assert event.get_time() == moment
    assert event.get_subject() == "fraud"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("partitionkey") == payload.key()
    assert event.get_data() == orjson.loads(payload.model_dump_json())


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: type(p).__name__)
def test_we_read_what_the_sdk_writes(payload: Payload) -> None:
    event = CloudEvent(
        attributes={
            "type": type(payload).type,
            "source": "/elsewhere",
            "id": "sdk-1",
            "datacontenttype": "application/json",
            "partitionkey": "p-1",
            "time": datetime(2026, 5, 6, tzinfo=UTC),
        },
        data=orjson.loads(payload.model_dump_json()),
    )
    written = ce_kafka.to_binary_event(event)
    key = written.key.encode() if isinstance(written.key, str) else written.key
    message = Message("t", 0, 0, key, written.value, tuple(written.headers.items()), 0)
    envelope = decode(message)
    assert (envelope.id, envelope.source, envelope.type) == (
        "sdk-1",
        "/elsewhere",
        type(payload).type,
    )
    assert envelope.time == datetime(2026, 5, 6, tzinfo=UTC)
    assert envelope.payload == payload
    assert message.key == b"p-1"


def test_round_trip_keeps_the_payload_and_the_key() -> None:
    for payload in EXAMPLES:
        record = encode("t", payload, source="/meander/test")
        assert decode(as_message(record)).payload == payload
        key = payload.key()
        assert record.key == (None if key is None else key.encode())


def test_dead_letter_keeps_the_original_bytes() -> None:
    dead = EXAMPLES[-1]
    assert isinstance(dead, DeadLetter)
    assert dead.original_value() == b"\xff\x00garbage"
    assert (dead.topic, dead.partition, dead.offset, dead.truncated) == (
        "fraud.events",
        1,
        9,
        False,
    )


def good_record() -> Record:
    return encode("t", FeatureEvent(id="e", features={"x": 1.0}), source="/s")


def with_headers(record: Record, **changes: bytes | None) -> Message:
    headers = dict(record.headers)
    for name, value in changes.items():
        name = name.replace("content_type", "content-type")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return Message("t", 0, 0, record.key, record.value, tuple(headers.items()), 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ce_specversion": b"0.3"}, "not a CloudEvents 1.0"),
        ({"ce_specversion": None}, "not a CloudEvents 1.0"),
        ({"ce_id": None}, "ce_id"),
        ({"ce_source": None, "ce_type": None}, "ce_source, ce_type"),
        ({"ce_type": b"com.example.other"}, "unknown ce_type"),
        ({"content_type": b"text/csv"}, "content-type"),
        ({"ce_time": b"yesterday"}, "RFC 3339"),
        ({"ce_id": b"\xff"}, "not UTF-8"),
    ],
)
def test_bad_headers_say_what_is_wrong(change: dict[str, bytes | None], reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode(with_headers(good_record(), **change))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid io.meander.event.v1 data"),
        (b'{"id": "e"}', "features: Field required"),
        (b'{"id": "e", "features": {"x": [1]}}', "features.x"),
        (b'{"id": "e", "features": {}, "extra": 1}', "extra: Extra inputs"),
    ],
)
def test_bad_payloads_say_what_is_wrong(value: bytes, reason: str) -> None:
    record = good_record()
    message = Message("t", 0, 0, None, value, record.headers, 0)
    with pytest.raises(ContractError, match=reason):
        decode(message)


def test_oversized_values_are_refused_before_parsing() -> None:
    message = as_message(good_record())
    with pytest.raises(ContractError, match="exceeds the limit of 10"):
        decode(message, max_bytes=10)


def test_decode_batch_separates_good_from_bad() -> None:
    good = as_message(good_record())
    bad = Message("t", 0, 1, None, b"junk", (), 0)
    decoded, rejected = decode_batch([good, bad, good])
    assert [e.message for e in decoded] == [good, good]
    assert [(m, r.split(":")[0]) for m, r in rejected] == [(bad, "no ce_* headers")]
