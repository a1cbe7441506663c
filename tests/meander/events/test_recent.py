"""A message decoded lately is not decoded again by the next reader handed the same object,
and nothing a reader asks for differently (a size limit, a flat layout) is served from another
reader's decoding."""

from __future__ import annotations

import orjson
import pytest

from meander.bus import Message
from meander.config import EncodingSettings
from meander.events import FeatureEvent, decode_batch, encode, keep_decoded

STAMP_MS = 1_767_323_045_678


@pytest.fixture(autouse=True)
def kept() -> None:
    keep_decoded(
        True
    )  # as an embedded runtime sets it; a Kafka one earlier in the session does not


def binary(event_id: str, offset: int = 0) -> Message:
    record = encode("shop.events", FeatureEvent(id=event_id, features={"amount": 1}), source="/s")
    return Message(record.topic, 0, offset, record.key, record.value, record.headers, STAMP_MS)


def flat(order_id: str, offset: int = 0) -> Message:
    value = orjson.dumps({"order_id": order_id, "amount": 2})
    return Message("shop.events", 0, offset, None, value, (), STAMP_MS)


def test_the_next_reader_of_a_message_gets_the_envelope_already_decoded() -> None:
    messages = [binary("a", 0), binary("b", 1)]
    first, _ = decode_batch(messages)
    again, _ = decode_batch(messages)
    assert [e is f for e, f in zip(again, first, strict=True)] == [True, True]
    assert [e.message is m for e, m in zip(again, messages, strict=True)] == [True, True]


def test_an_equal_message_that_is_another_object_is_decoded_afresh() -> None:
    message = binary("a")
    copy = Message(*(getattr(message, f) for f in Message.__dataclass_fields__))
    (first,), _ = decode_batch([message])
    (twin,), _ = decode_batch([copy])
    assert copy == message and twin is not first
    assert twin.message is copy and twin.payload == first.payload


def test_a_size_limit_is_held_to_whoever_decoded_the_message_first() -> None:
    message = binary("a")
    decoded, _ = decode_batch([message])
    assert len(decoded) == 1
    limit = len(message.value or b"") - 1
    decoded, rejected = decode_batch([message], max_bytes=limit)
    assert decoded == [] and [m for m, _ in rejected] == [message]
    assert "exceeds the limit" in rejected[0][1]


def test_a_flat_object_is_read_with_each_reader_s_own_layout() -> None:
    message = flat("o-7")
    (by_field,), _ = decode_batch([message], layout=EncodingSettings(id_field="order_id"))
    (derived,), _ = decode_batch([message])
    assert by_field.payload.id == "o-7"  # type: ignore[union-attr]
    assert derived.payload.id != "o-7"  # type: ignore[union-attr]
    assert derived.payload.features == {"order_id": "o-7", "amount": 2}  # type: ignore[union-attr]


def test_nothing_is_kept_for_a_bus_that_never_hands_a_message_on_twice() -> None:
    keep_decoded(False)  # as a runtime on Kafka sets it
    try:
        message = binary("a")
        (first,), _ = decode_batch([message])
        (again,), _ = decode_batch([message])
        assert again is not first and again.payload == first.payload
    finally:
        keep_decoded(True)
    (kept,), _ = decode_batch([message])
    (again,), _ = decode_batch([message])
    assert again is kept
