"""An event's time (a label's ``observed_at``) in every encoding: the value's, else ``ce_time``,
else the record's timestamp; never the clock of whoever decodes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from meander.bus import Message
from meander.events import FeatureEvent, Feedback, decode, encode

STAMP_MS = 1_767_323_045_678  # the record's timestamp
STAMP = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
CE_TIME = datetime(2021, 1, 1, tzinfo=UTC)
VALUE_TIME = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
SPEC = ("ce_specversion", b"1.0")
JSON = ("content-type", b"application/json")

Headers = tuple[tuple[str, bytes], ...]
Write = Callable[[str, str, dict[str, Any], datetime | None], tuple[bytes, Headers]]


def as_meander_writes(
    topic: str, kind: str, data: dict[str, Any], ce_time: datetime | None
) -> tuple[bytes, Headers]:
    # The fast path: headers exactly as encode writes them (it always writes ce_time).
    assert ce_time is not None
    record = encode(topic, Feedback(event_id="e", label=1), source="/s", time=ce_time)
    headers = tuple((n, kind.encode() if n == "ce_type" else v) for n, v in record.headers)
    return orjson.dumps(data), headers


def by_name(
    topic: str, kind: str, data: dict[str, Any], ce_time: datetime | None
) -> tuple[bytes, Headers]:
    # Another writer: other order and case, ce_time only when it has one.
    when = () if ce_time is None else (("CE_TIME", ce_time.isoformat().encode()),)
    headers = (JSON, ("ce_type", kind.encode()), *when, ("ce_id", b"i"), ("ce_source", b"/s"), SPEC)
    return orjson.dumps(data), headers


def structured(
    topic: str, kind: str, data: dict[str, Any], ce_time: datetime | None
) -> tuple[bytes, Headers]:
    envelope: dict[str, Any] = {"specversion": "1.0", "id": "i", "source": "/s", "type": kind}
    if ce_time is not None:
        envelope["time"] = ce_time.isoformat()
    envelope["data"] = data
    return orjson.dumps(envelope), (("content-type", b"application/cloudevents+json"),)


def plain(
    topic: str, kind: str, data: dict[str, Any], ce_time: datetime | None
) -> tuple[bytes, Headers]:
    assert ce_time is None  # plain JSON has no ce_time
    return orjson.dumps(data), ()


CLOUDEVENTS = [as_meander_writes, by_name, structured]
CASES = [
    ("shop.events", FeatureEvent, {"id": "o-1", "features": {"amount": 1.5}}, "time"),
    ("shop.feedback", Feedback, {"event_id": "o-1", "label": True}, "observed_at"),
]


def decoded_time(
    write: Write, topic: str, kind: str, data: dict[str, Any], ce_time: datetime | None, field: str
) -> datetime:
    value, headers = write(topic, kind, data, ce_time)
    envelope = decode(Message(topic, 0, 9, b"o-1", value, headers, STAMP_MS))
    moment = getattr(envelope.payload, field)
    assert isinstance(moment, datetime)
    return moment


@pytest.mark.parametrize("write", CLOUDEVENTS, ids=lambda write: write.__name__)
@pytest.mark.parametrize(("topic", "payload_type", "data", "field"), CASES)
def test_the_values_time_wins_over_ce_time(
    write: Write, topic: str, payload_type: type[Any], data: dict[str, Any], field: str
) -> None:
    given = {**data, field: VALUE_TIME.isoformat()}
    assert decoded_time(write, topic, payload_type.type, given, CE_TIME, field) == VALUE_TIME


@pytest.mark.parametrize("write", CLOUDEVENTS, ids=lambda write: write.__name__)
@pytest.mark.parametrize(("topic", "payload_type", "data", "field"), CASES)
def test_without_a_time_in_the_value_ce_time_is_the_time(
    write: Write, topic: str, payload_type: type[Any], data: dict[str, Any], field: str
) -> None:
    assert decoded_time(write, topic, payload_type.type, data, CE_TIME, field) == CE_TIME


@pytest.mark.parametrize("write", [by_name, structured, plain], ids=lambda write: write.__name__)
@pytest.mark.parametrize(("topic", "payload_type", "data", "field"), CASES)
def test_with_neither_the_records_timestamp_is_the_time(
    write: Write, topic: str, payload_type: type[Any], data: dict[str, Any], field: str
) -> None:
    assert decoded_time(write, topic, payload_type.type, data, None, field) == STAMP
