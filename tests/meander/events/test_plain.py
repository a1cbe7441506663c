"""Plain JSON, with no CloudEvents headers, on a stream's topics: its shapes, and what the
record gives where the value says nothing (ids, times); every reason says what to change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from meander.bus import Message
from meander.config import EncodingSettings
from meander.events import (
    Envelope,
    FeatureEvent,
    Feedback,
    Prediction,
    decode,
    decode_batch,
    encode,
    encode_json,
)
from meander.exceptions import ContractError

STAMP_MS = 1_767_323_045_678  # the record's timestamp: 2026-01-02T03:04:05.678Z
STAMP = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
FLAT = EncodingSettings(id_field="order_id", time_field="ts")


def message(
    value: Any,
    *,
    topic: str = "shop.events",
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes], ...] = (),
    offset: int = 41,
) -> Message:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Message(topic, 2, offset, key, raw, headers, STAMP_MS)


def read(value: Any, layout: EncodingSettings | None = None, **where: Any) -> Envelope:
    return decode(message(value, **where), layout=layout)


def test_the_payload_shape_is_read_as_it_is() -> None:
    envelope = read(
        {
            "id": "o-1",
            "time": "2020-05-01T00:00:00Z",
            "entity": "c-9",
            "features": {"amount": 3.5, "country": "FR", "vip": True, "note": None},
        }
    )
    assert envelope.payload == FeatureEvent(
        id="o-1",
        time=datetime(2020, 5, 1, tzinfo=UTC),
        entity="c-9",
        features={"amount": 3.5, "country": "FR", "vip": True, "note": None},
    )
    assert (envelope.encoding, envelope.id, envelope.source) == (
        "json",
        "o-1",
        "/kafka/shop.events",
    )
    assert (envelope.type, envelope.time) == (FeatureEvent.type, datetime(2020, 5, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("ts", "moment"),
    [
        ("2020-05-01T02:00:00+02:00", datetime(2020, 5, 1, tzinfo=UTC)),
        (1_588_291_200, datetime(2020, 5, 1, tzinfo=UTC)),  # Unix seconds
        (1_588_291_200_500, datetime(2020, 5, 1, 0, 0, 0, 500_000, tzinfo=UTC)),  # milliseconds
    ],
)
def test_a_flat_object_is_features_but_its_id_and_time_fields(ts: Any, moment: datetime) -> None:
    envelope = read({"order_id": "o-2", "ts": ts, "amount": 1, "country": "DE"}, FLAT)
    assert envelope.encoding == "flat"
    assert envelope.payload == FeatureEvent(
        id="o-2", time=moment, features={"amount": 1, "country": "DE"}
    )


def test_without_settings_every_field_of_a_flat_object_is_a_feature() -> None:
    event = read({"order_id": "o-2", "amount": 1}).payload
    assert isinstance(event, FeatureEvent)
    assert event.features == {"order_id": "o-2", "amount": 1}


def test_ids_come_from_the_value_else_the_key_else_where_the_record_sits() -> None:
    assert read({"order_id": 12, "amount": 1}, FLAT, key=b"k").id == "12"  # a number as text
    assert read({"features": {"amount": 1}, "id": 7}, key=b"k").id == "7"
    assert read({"amount": 1}, FLAT, key=b"k-1").id == "k-1"
    derived = read({"amount": 1}, FLAT)
    assert derived.id == derived.payload.id == "shop.events-2-41"  # type: ignore[union-attr]
    again = read({"amount": 1}, FLAT)
    assert again.payload == derived.payload  # reading the log again gives the same ids


def test_times_come_from_the_value_else_the_record() -> None:
    event = read({"amount": 1}).payload
    assert isinstance(event, FeatureEvent) and event.time == STAMP


def test_feedback_in_each_shape() -> None:
    where = {"topic": "shop.feedback"}
    full = read({"event_id": "o-1", "label": True, "observed_at": "2020-01-01T00:00:00Z"}, **where)
    assert full.payload == Feedback(
        event_id="o-1", label=True, observed_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    keyed = read({"label": "fraud"}, key=b"o-2", **where)
    assert keyed.payload == Feedback(event_id="o-2", label="fraud", observed_at=STAMP)
    bare = read(b"1", key=b"o-3", **where)
    assert bare.payload == Feedback(event_id="o-3", label=1, observed_at=STAMP)
    numbered = read({"event_id": 4, "label": False}, **where)
    assert numbered.payload.event_id == "4"  # type: ignore[union-attr]
    assert {full.encoding, keyed.encoding, bare.encoding} == {"json"}
    assert bare.id == "shop.feedback-2-41" and bare.type == Feedback.type


def test_plain_json_predictions_round_trip() -> None:
    prediction = Prediction(
        event_id="o-1", model="shop", version=3, prediction=True, latency_ms=0.5
    )
    record = encode_json("shop.predictions", prediction)
    assert (record.key, record.headers) == (b"o-1", ())
    envelope = decode(
        Message(record.topic, 0, 0, record.key, record.value, record.headers, STAMP_MS)
    )
    assert envelope.payload == prediction and envelope.encoding == "json"
    assert envelope.time == STAMP


def test_headers_that_are_not_cloudevents_leave_a_record_plain() -> None:
    headers = (("traceparent", b"00-4bf9-00f0-01"), ("content-type", b"application/json"))
    assert read({"features": {"amount": 1}}, headers=headers).encoding == "json"


@pytest.mark.parametrize(
    ("value", "topic", "key", "reason"),
    [
        (
            b"{not json",
            "shop.events",
            None,
            "not JSON ({orjson}) and no ce_* headers: send "
            'a JSON object of features, or {"id": ..., "time": ..., "features": {...}}, or a '
            "CloudEvent (ce_* headers, or content-type application/cloudevents+json)",
        ),
        (
            '{"amount": 1, "country": "Fé"}'.encode("latin-1"),
            "shop.events",
            None,
            "not JSON (byte 0xe9 at offset 27 is not UTF-8, and JSON text is UTF-8: encode it as "
            "UTF-8) and no ce_* headers: send "
            'a JSON object of features, or {"id": ..., "time": ..., "features": {...}}, or a '
            "CloudEvent (ce_* headers, or content-type application/cloudevents+json)",
        ),
        (
            [1, 2],
            "shop.events",
            None,
            'a JSON array with no ce_* headers: send a JSON object of features, or {"id": ..., '
            '"time": ..., "features": {...}}, or a CloudEvent (ce_* headers, or content-type '
            "application/cloudevents+json)",
        ),
        (
            {"amount": 1, "customer": {"id": 3}},
            "shop.events",
            None,
            "no features object and no ce_* headers, so the object was read as flat features, "
            'and \'customer\' is a JSON object: send {"id": ..., "features": {...}}, or a flat '
            "object whose values are numbers, text, booleans or null",
        ),
        (
            {},
            "shop.events",
            None,
            'no features in {}: send a JSON object of features, or {"id": ..., "time": ..., '
            '"features": {...}}, or a CloudEvent (ce_* headers, or content-type '
            "application/cloudevents+json)",
        ),
        (
            {"features": {"amount": 1}, "amount": 2},
            "shop.events",
            None,
            "invalid io.meander.event.v1 data (plain JSON): amount: Extra inputs are not "
            "permitted; an event has only id, time, entity and features: put the features under "
            '"features"',
        ),
        (
            {"order_id": "o", "ts": "yesterday", "amount": 1},
            "shop.events",
            None,
            "invalid io.meander.event.v1 data (plain JSON, a flat object of features): 'ts' (the "
            "stream's encoding.time_field): Input should be a valid datetime or date, input is "
            "too short",
        ),
        (
            {"amount": 1},
            "shop.events",
            b"\xff",
            "the Kafka key is not UTF-8 text, so it cannot be the id: key the record by the id "
            "as text, or put the id in the value",
        ),
        (
            b"true",
            "shop.feedback",
            None,
            'no "event_id" in the feedback and no Kafka key: send {"event_id": ..., "label": '
            "...}, or key the record by the event id",
        ),
        (
            {"event_id": "o-1"},
            "shop.feedback",
            None,
            'no "label" in the feedback: send {"event_id": ..., "label": ...}, or the label alone '
            "keyed by the event id",
        ),
        (
            [True],
            "shop.feedback",
            b"o-1",
            'a JSON array as feedback: send {"event_id": ..., "label": ...}, or the label alone '
            "keyed by the event id",
        ),
        (
            {"kind": "data_drift"},
            "meander.alerts",
            None,
            "no ce_* headers: meander.alerts carries meander's CloudEvents only (binary mode, with "
            "ce_specversion, ce_id, ce_source and ce_type headers)",
        ),
    ],
)
def test_what_cannot_be_read_says_what_to_send(
    value: Any, topic: str, key: bytes | None, reason: str
) -> None:
    with pytest.raises(ContractError) as raised:
        read(value, FLAT, topic=topic, key=key)
    if "{orjson}" in reason:  # orjson's own words for where the JSON broke
        with pytest.raises(orjson.JSONDecodeError) as broken:
            orjson.loads(value)
        reason = reason.replace("{orjson}", str(broken.value))
    assert str(raised.value) == reason


def test_plain_and_binary_records_decode_side_by_side() -> None:
    binary = encode("shop.events", FeatureEvent(id="b", features={"amount": 1}), source="/s")
    records = [
        Message(binary.topic, 0, 0, binary.key, binary.value, binary.headers, STAMP_MS),
        message({"order_id": "p", "amount": 2}),
        message(b"junk"),
    ]
    decoded, rejected = decode_batch(records, layout=FLAT)
    assert [(e.encoding, e.payload.id) for e in decoded] == [  # type: ignore[union-attr]
        ("binary", "b"),
        ("flat", "p"),
    ]
    assert [m.value for m, _ in rejected] == [b"junk"]
