"""The codec's shortcuts write and read exactly what the plain pydantic path would."""

from __future__ import annotations

import dataclasses
import random
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from pydantic import TypeAdapter

from meander.bus import Message
from meander.events import (
    Alert,
    FeatureEvent,
    Feedback,
    Payload,
    Prediction,
    Value,
    decode,
    encode,
)
from meander.exceptions import ContractError

MOMENTS = [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 678),
    datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
]


def floats(count: int, seed: int = 1) -> Iterator[float]:
    """Every kind of double: random bit patterns, plus the edges printers get wrong."""
    rng = random.Random(seed)
    yield from (0.0, -0.0, 1.0, 0.1, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 1e22)
    yield from (float("nan"), float("inf"), float("-inf"))
    for _ in range(count):
        yield struct.unpack("<d", rng.randbytes(8))[0]


def payloads() -> Iterator[Payload]:
    texts = ["", 'quote " and \\ slash', "\x00\x1f\x7f", "é€😀", "\u2028", "</script>"]
    for index, number in enumerate(floats(300)):
        moment = MOMENTS[index % len(MOMENTS)]
        text = texts[index % len(texts)]
        yield FeatureEvent(
            id=f"e{index}",
            time=moment,
            features={"x": number, "n": index, "b": index % 2 == 0, "s": text, "none": None},
            entity=text or None,
        )
        yield Prediction(
            event_id=f"e{index}",
            model="m",
            version=index,
            prediction=number if index % 3 else text,
            probabilities={text: number} if index % 2 else None,
            latency_ms=abs(number) if number == number else 0.0,
            event_time=moment if index % 2 else None,
        )
        yield Feedback(event_id=f"e{index}", label=number, observed_at=moment)
        yield Alert(
            kind="data_drift",
            stream="s",
            severity="info",
            statistic=text,
            value=number,
            detected_at=moment,
        )


def test_the_value_is_pydantics_json_byte_for_byte() -> None:
    for payload in payloads():
        value = encode("t", payload, source="/s").value
        assert value == payload.model_dump_json().encode(), payload
        # ...which is also what meander wrote before it took the shortcut.
        assert value == orjson.dumps(payload.model_dump(mode="json")), payload


def test_integers_beyond_64_bits_are_written_too() -> None:
    payload = FeatureEvent(id="e", features={"huge": 2**70})
    record = encode("t", payload, source="/s")
    assert record.value == payload.model_dump_json().encode()
    message = Message("t", 0, 0, record.key, record.value, record.headers, 0)
    assert decode(message).payload == payload


def test_each_record_has_its_own_time_to_the_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bursts within one millisecond, then across milliseconds and seconds, then back again.
    clock = {
        1_767_323_045_000_000_000: "2026-01-02T03:04:05.000Z",
        1_767_323_045_000_678_999: "2026-01-02T03:04:05.000Z",
        1_767_323_045_001_000_000: "2026-01-02T03:04:05.001Z",
        1_767_323_045_999_999_999: "2026-01-02T03:04:05.999Z",
        1_767_323_046_000_000_001: "2026-01-02T03:04:06.000Z",
        1_767_323_046_123_456_789: "2026-01-02T03:04:06.123Z",
        1_767_323_045_500_000_000: "2026-01-02T03:04:05.500Z",
        1_799_999_999_999_000_000: "2027-01-15T07:59:59.999Z",
    }
    readings = iter(clock)
    monkeypatch.setattr(time, "time_ns", lambda: next(readings))
    records = [encode("t", Feedback(event_id="e", label=1), source="/s") for _ in clock]
    monkeypatch.undo()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for record, (nanoseconds, stamp) in zip(records, clock.items(), strict=True):
        assert dict(record.headers)["ce_time"] == stamp.encode()
        assert record.timestamp_ms == nanoseconds // 1_000_000
        assert datetime.fromisoformat(stamp) == epoch + timedelta(milliseconds=record.timestamp_ms)


def test_a_given_time_keeps_its_microseconds() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    record = encode("t", Feedback(event_id="e", label=1), source="/s", time=moment)
    assert dict(record.headers)["ce_time"] == b"2026-01-02T03:04:05.000678Z"
    assert record.timestamp_ms == 1_767_323_045_000


def test_times_follow_the_clock() -> None:
    before = time.time_ns() // 1_000_000
    stamps = [encode("t", Feedback(event_id="e", label=1), source="/s") for _ in range(3)]
    after = time.time_ns() // 1_000_000
    assert all(before <= r.timestamp_ms <= after for r in stamps)
    for record in stamps:
        parsed = datetime.fromisoformat(dict(record.headers)["ce_time"].decode())
        assert abs(parsed.timestamp() * 1000 - record.timestamp_ms) < 1


def test_a_naive_time_is_utc_in_the_header_and_the_timestamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        naive = datetime(2026, 1, 2, 3, 4, 5)
        record = encode("t", Feedback(event_id="e", label=1), source="/s", time=naive)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert dict(record.headers)["ce_time"] == b"2026-01-02T03:04:05Z"
    assert record.timestamp_ms == int(naive.replace(tzinfo=UTC).timestamp() * 1000)


def test_headers_in_order_with_and_without_subject() -> None:
    moment = MOMENTS[0]
    payload = Feedback(event_id="e", label=1)
    plain = encode("t", payload, source="/s", event_id="i", time=moment)
    assert plain.headers == (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"i"),
        ("ce_source", b"/s"),
        ("ce_type", b"io.meander.feedback.v1"),
        ("ce_time", b"2026-01-02T03:04:05Z"),
        ("content-type", b"application/json"),
    )
    subject = encode("t", payload, source="/s", event_id="i", time=moment, subject="fraud")
    assert subject.headers == (*plain.headers, ("ce_subject", b"fraud"))
    fresh = [dict(encode("t", payload, source="/s").headers)["ce_id"] for _ in range(2)]
    assert fresh[0] != fresh[1]


def test_header_names_in_any_case_and_content_type_parameters_are_read() -> None:
    record = encode("t", Feedback(event_id="e", label=1), source="/s", subject="fraud")
    headers = tuple(
        (name.upper() if name.startswith("ce_") else "Content-Type", value)
        for name, value in record.headers
    )
    headers = (*headers[:-2], ("Content-Type", b"application/json; charset=utf-8"), headers[-1])
    envelope = decode(Message("t", 0, 0, record.key, record.value, headers, 0))
    assert (envelope.source, envelope.subject) == ("/s", "fraud")
    assert envelope.payload == Feedback.model_validate_json(record.value)


def test_other_headers_are_ignored_whatever_their_bytes() -> None:
    """Other systems' headers (tracing, schema ids) are not ours to read or to refuse."""
    record = encode("t", Feedback(event_id="e", label=1), source="/s")
    for other in (b"00-abc-def-01", b"\xff\x00"):
        extra = (*record.headers, ("traceparent", other))
        assert decode(Message("t", 0, 0, None, record.value, extra, 0)).source == "/s"
    bad = (*record.headers[:-1], ("ce_subject", b"\xff"))
    with pytest.raises(ContractError, match="header 'ce_subject' is not UTF-8"):
        decode(Message("t", 0, 0, None, record.value, bad, 0))


def test_an_envelope_is_a_frozen_dataclass() -> None:
    record = encode("t", Feedback(event_id="e", label=1), source="/s", event_id="i")
    message = Message("t", 0, 0, record.key, record.value, record.headers, 0)
    envelope = decode(message)
    assert [f.name for f in dataclasses.fields(envelope)] == [
        "id",
        "source",
        "type",
        "time",
        "subject",
        "payload",
        "message",
    ]
    assert (envelope.id, envelope.source, envelope.subject, envelope.message) == (
        "i",
        "/s",
        None,
        message,
    )
    assert envelope.encoding == "binary"  # a class attribute: binary mode's costs no field
    assert envelope == decode(message)
    assert hash(envelope) == hash(decode(message))
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.id = "other"  # type: ignore[misc]
    assert dataclasses.replace(envelope, subject="fraud").subject == "fraud"
    assert repr(envelope).startswith("Envelope(id='i', source='/s', type='io.meander.feedback.v1'")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            b'{"id": "e", "features": {"x": [1]}}',
            "features.x: must be a boolean, an integer, a number or a string, not an array",
        ),
        (
            b'{"id": "e", "features": {"ok": 1.5, "x": {"a": 1}, "y": null}}',
            "features.x: must be a boolean, an integer, a number or a string, not an object",
        ),
        (
            b'{"id": "e", "features": {"x": 1, "y": []}, "time": "bad"}',
            "time: Input should be a valid datetime or date, input is too short (+1 more)",
        ),
        (b'{"id": "e", "features": []}', "features: Input should be an object"),
    ],
)
def test_bad_features_are_named_as_declared(value: bytes, reason: str) -> None:
    # A union's members are named in their declared order, though JSON tries floats first.
    record = encode("t", FeatureEvent(id="e", features={}), source="/s")
    with pytest.raises(ContractError) as raised:
        decode(Message("t", 0, 0, None, value, record.headers, 0))
    assert str(raised.value) == f"invalid io.meander.event.v1 data: {reason}"


def test_json_features_validate_as_declared() -> None:
    declared = TypeAdapter(dict[str, Value | None])
    text = (
        b'{"f": 1.5, "i": 2, "z": 0, "b": true, "s": "1", "n": null, "inf": 1e400, "g": 1.0,'
        b' "big": 123456789012345678901234567890, "neg": -7, "e": 1e-7}'
    )
    ours = FeatureEvent.model_validate_json(b'{"id": "e", "features": ' + text + b"}").features
    theirs = declared.validate_json(text)
    assert list(ours.items()) == list(theirs.items())
    assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]


def test_the_sdk_reads_the_time_encode_stamps() -> None:
    record = encode("t", Feedback(event_id="e", label=1), source="/s")
    headers = dict(record.headers)
    event = ce_kafka.from_binary_event(ce_kafka.KafkaMessage(headers, record.key, record.value))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert event.get_time() == epoch + timedelta(milliseconds=record.timestamp_ms)
