"""What a record gives when its value leaves something out: an id, an event's time.

Whatever the encoding, an event's id is its value's, else the CloudEvents id, else (plain JSON)
the Kafka key, else one made of where the record sits, so that reading the log again gives the
same ids; a label's event id is its value's, else the Kafka key; and an event's time (a label's
``observed_at``) is its value's, else ``ce_time``, else the record's timestamp.

>>> from meander.bus import Message
>>> message = Message("fraud.events", 2, 41, None, b"{}", (), 1_767_323_045_678)
>>> derived_id(message), record_time(message).isoformat()
('fraud.events-2-41', '2026-01-02T03:04:05.678000+00:00')
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from meander.bus import Message
from meander.events.payloads import FeatureEvent, Feedback, Payload
from meander.exceptions import ContractError

__all__ = ["complete", "completed", "derived_id", "key_text", "record_time"]


def derived_id(message: Message) -> str:
    """The id of an event that brought none: its topic, partition and offset."""
    return f"{message.topic}-{message.partition}-{message.offset}"


def key_text(message: Message) -> str | None:
    """The Kafka key as text; None when there is none."""
    if not message.key:
        return None
    try:
        return message.key.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError(
            "the Kafka key is not UTF-8 text, so it cannot be the id: key the record by the id "
            "as text, or put the id in the value"
        ) from None


def record_time(message: Message) -> datetime:
    """The record's timestamp, or now for a record that has none (a timestamp of -1)."""
    if message.timestamp_ms < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)


def complete(
    payload_type: type[Payload],
    data: dict[str, Any],
    message: Message,
    event_id: str | None,
    time: datetime | None,
) -> dict[str, Any]:
    """``data`` with what it leaves out taken from the record; ``event_id`` and ``time`` are
    the CloudEvents id and time, when the record is a CloudEvent."""
    if payload_type is FeatureEvent:
        if "id" not in data:
            data["id"] = event_id or key_text(message) or derived_id(message)
        if "time" not in data:
            data["time"] = time or record_time(message)
    elif payload_type is Feedback:
        if "event_id" not in data and (key := key_text(message)) is not None:
            data["event_id"] = key
        if "observed_at" not in data:
            data["observed_at"] = time or record_time(message)
    return data


def completed(payload: Payload, message: Message, event_id: str, time: datetime | None) -> Payload:
    """A binary-mode payload, validated as it came, with what it left out taken from the record
    in place of the defaults a payload built in Python gets (a new id, the clock)."""
    given = payload.__pydantic_fields_set__
    if type(payload) is FeatureEvent:
        if "id" not in given:
            _fill(payload, "id", event_id)
        if "time" not in given:
            _fill(payload, "time", time or record_time(message))
    elif type(payload) is Feedback and "observed_at" not in given:
        _fill(payload, "observed_at", time or record_time(message))
    return payload


def _fill(payload: Payload, name: str, value: Any) -> None:
    # The payload was built a moment ago by the decoder and nothing else holds it yet; setting
    # the field in place costs a fraction of a model_copy, which binary-mode events with no time
    # of their own would pay on every record.
    payload.__dict__[name] = value
    payload.__pydantic_fields_set__.add(name)
