"""Structured-mode CloudEvents as the SDK writes them: the whole event in the value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from meander.bus import Message
from meander.events import Envelope, FeatureEvent, Feedback, decode, encode
from meander.exceptions import ContractError

STAMP_MS = 1_767_323_045_678
STRUCTURED = (("content-type", b"application/cloudevents+json"),)


def from_sdk(topic: str, event: CloudEvent) -> Envelope:
    written = ce_kafka.to_structured_event(event)
    key = written.key.encode() if isinstance(written.key, str) else written.key
    headers = tuple(written.headers.items())
    return decode(Message(topic, 0, 3, key, written.value, headers, STAMP_MS))


def test_what_the_sdk_writes_in_structured_mode_is_read() -> None:
    moment = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
    attributes = {"type": FeatureEvent.type, "source": "/shop", "id": "o-1", "time": moment}
    event = CloudEvent({**attributes, "subject": "shop"}, {"features": {"amount": 2.5}})
    envelope = from_sdk("shop.events", event)
    assert envelope.encoding == "structured"
    assert (envelope.id, envelope.source, envelope.type, envelope.time, envelope.subject) == (
        "o-1",
        "/shop",
        FeatureEvent.type,
        moment,
        "shop",
    )
    # The data has no id and no time: the event's are the CloudEvent's.
    assert envelope.payload == FeatureEvent(id="o-1", time=moment, features={"amount": 2.5})


def test_feedback_takes_its_event_id_from_the_key_when_the_data_has_none() -> None:
    attributes = {"type": Feedback.type, "source": "/shop", "partitionkey": "o-1"}
    envelope = from_sdk("shop.feedback", CloudEvent(attributes, {"label": True}))
    assert isinstance(envelope.payload, Feedback)
    assert (envelope.payload.event_id, envelope.payload.label) == ("o-1", True)
    assert envelope.payload.observed_at == envelope.time  # the CloudEvent's time


def test_the_content_type_wins_over_ce_headers_and_no_header_is_needed() -> None:
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "o-2",
            "source": "/s",
            "type": FeatureEvent.type,
            "datacontenttype": "application/json; charset=utf-8",
            "data": {"features": {"amount": 1}},
        }
    )
    binary = encode("shop.events", FeatureEvent(features={"amount": 9}), source="/b")
    for headers in (STRUCTURED + binary.headers, ()):
        envelope = decode(Message("shop.events", 0, 0, None, value, headers, STAMP_MS))
        assert (envelope.encoding, envelope.payload.id) == ("structured", "o-2")  # type: ignore[union-attr]
    with_time = decode(Message("shop.events", 0, 0, None, value, (), STAMP_MS)).payload
    assert with_time.time == datetime.fromtimestamp(STAMP_MS / 1000, UTC)  # type: ignore[union-attr]


def envelope(**changes: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": "o-3",
        "source": "/s",
        "type": FeatureEvent.type,
        "data": {"features": {"amount": 1}},
    }
    event.update(changes)
    return {name: value for name, value in event.items() if value is not None}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            b"{oops",
            "content-type application/cloudevents+json but the value is not JSON",
        ),
        (
            b'{"specversion": "1.0", "id": "caf\xe9"}',
            "content-type application/cloudevents+json but the value is not JSON (byte 0xe9 at "
            "offset 33 is not UTF-8, and JSON text is UTF-8: encode it as UTF-8)",
        ),
        (
            orjson.dumps([envelope()]),
            "a structured-mode event must be a JSON object, got list",
        ),
        (
            orjson.dumps(envelope(specversion="0.3")),
            "structured-mode event with specversion '0.3': meander reads CloudEvents 1.0; "
            'send "specversion": "1.0"',
        ),
        (
            orjson.dumps(envelope(id="", source=None)),
            "structured-mode event without id, source (or not text): a structured-mode event "
            'needs "specversion": "1.0", "id", "source", "type" and "data"',
        ),
        (
            orjson.dumps(envelope(datacontenttype="text/csv")),
            "datacontenttype 'text/csv': meander reads JSON data; send the data as a JSON object "
            'under "data", with datacontenttype application/json or none',
        ),
        (
            orjson.dumps(envelope(data=None, data_base64="AAE=")),
            'structured-mode event with data_base64: send the payload as a JSON object under "data"'
            ' (for an event, {"features": {...}})',
        ),
        (
            orjson.dumps(envelope(type="com.example.order")),
            "unknown type 'com.example.order'; on shop.events send io.meander.event.v1",
        ),
        (
            orjson.dumps(envelope(time="yesterday")),
            "ce_time 'yesterday' is not an RFC 3339 timestamp",
        ),
        (
            orjson.dumps(envelope(data={"features": {"amount": [1]}})),
            "invalid io.meander.event.v1 data (structured mode): features.amount: must be a "
            "boolean, an integer, a number or a string, not an array",
        ),
    ],
)
def test_what_cannot_be_read_says_what_to_send(value: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as raised:
        decode(Message("shop.events", 0, 0, None, value, STRUCTURED, STAMP_MS))
    assert str(raised.value).startswith(reason)
