"""Records and messages behave as the frozen dataclasses they are, whatever builds them."""

from __future__ import annotations

import dataclasses
import time

import pytest

from meander.bus import Message, Record


def test_a_record_has_its_defaults_and_its_own_timestamp() -> None:
    before = int(time.time() * 1000)
    record = Record("t", b"v")
    after = int(time.time() * 1000)
    assert (record.key, record.headers, record.partition) == (None, (), None)
    assert before <= record.timestamp_ms <= after
    given = Record(
        topic="t", value=b"v", key=b"k", headers=(("h", b"x"),), partition=2, timestamp_ms=7
    )
    assert dataclasses.astuple(given) == ("t", b"v", b"k", (("h", b"x"),), 2, 7)
    assert given == Record("t", b"v", b"k", (("h", b"x"),), 2, 7)
    assert hash(given) == hash(Record("t", b"v", b"k", (("h", b"x"),), 2, 7))
    assert given.size() == 1 + 1 + 2
    assert repr(given) == (
        "Record(topic='t', value=b'v', key=b'k', headers=(('h', b'x'),), partition=2, "
        "timestamp_ms=7)"
    )


def test_a_message_keeps_every_field_in_order() -> None:
    message = Message("t", 1, 2, b"k", b"v", (), 3)
    assert [f.name for f in dataclasses.fields(message)] == [
        "topic",
        "partition",
        "offset",
        "key",
        "value",
        "headers",
        "timestamp_ms",
    ]
    assert dataclasses.astuple(message) == ("t", 1, 2, b"k", b"v", (), 3)
    assert message.topic_partition == ("t", 1)
    assert dataclasses.replace(message, offset=9).offset == 9


@pytest.mark.parametrize("instance", [Record("t", b"v"), Message("t", 0, 0, None, b"v", (), 0)])
def test_records_and_messages_are_frozen(instance: Record | Message) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        instance.topic = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        type(instance)("t")  # type: ignore[call-arg]
