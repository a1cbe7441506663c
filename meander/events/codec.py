"""Payloads on the wire: CloudEvents 1.0 in Kafka binary mode, and back.

Attributes travel as ``ce_*`` headers (``datacontenttype`` as ``content-type``), the payload as
JSON in the value, and the event id or an entity key as the Kafka key, which CloudEvents readers
see as the ``partitionkey`` extension. Every event of the closed loop goes through here several
times, so the common path avoids work whose result is known in advance.

>>> from meander.events.payloads import Feedback
>>> record = encode("fraud.feedback", Feedback(event_id="e1", label=True), source="/meander/test")
>>> record.key, dict(record.headers)["ce_type"]
(b'e1', b'io.meander.feedback.v1')
>>> envelope = decode(Message("fraud.feedback", 0, 0, record.key, record.value, record.headers, 0))
>>> envelope.payload.label, envelope.source
(True, '/meander/test')
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from meander.bus import Message, Record
from meander.events.headers import (
    CONTENT_TYPE_HEADER,
    SPECVERSION_HEADER,
    attributes,
    parse_time,
    rfc3339,
    time_header,
)
from meander.events.payloads import (
    PAYLOADS,
    Alert,
    FeatureEvent,
    Feedback,
    Payload,
    Prediction,
)
from meander.events.values import Value, new_id
from meander.exceptions import ContractError

__all__ = ["Envelope", "decode", "decode_batch", "encode"]

_TYPE_HEADERS = {kind: ("ce_type", kind.type.encode()) for kind in PAYLOADS.values()}
# Validated, these hold only JSON's own types and datetimes, which orjson writes byte for byte as
# pydantic does (the tests hold the two to it) in a fraction of the time.
_PLAIN_JSON = frozenset({FeatureEvent, Prediction, Feedback, Alert})


@dataclass(frozen=True, slots=True, init=False)
class Envelope:
    """A decoded event: its CloudEvents attributes, its payload, and where it was read."""

    id: str
    source: str
    type: str
    time: datetime | None
    subject: str | None
    payload: Payload
    message: Message

    def __init__(
        self,
        id: str,
        source: str,
        type: str,
        time: datetime | None,
        subject: str | None,
        payload: Payload,
        message: Message,
    ) -> None:
        # A frozen dataclass's own __init__ sets each field through object.__setattr__; the
        # slots' setters do the same at half the cost, and every message decoded builds one.
        set_id, set_source, set_type, set_time, set_subject, set_payload, set_message = _SETTERS
        set_id(self, id)
        set_source(self, source)
        set_type(self, type)
        set_time(self, time)
        set_subject(self, subject)
        set_payload(self, payload)
        set_message(self, message)


_SETTERS = tuple(getattr(Envelope, field.name).__set__ for field in fields(Envelope))


def encode(
    topic: str,
    payload: Payload,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Record:
    """The Kafka record that carries ``payload`` as a binary-mode CloudEvent.

    ``event_id`` is the CloudEvents id (a new one when None), ``time`` the event time (now, to the
    millisecond, when None; a naive time is taken as UTC); the record's timestamp is the same
    instant, in milliseconds.
    """
    if time is None:
        timestamp_ms = clock.time_ns() // 1_000_000
        stamp = time_header(timestamp_ms)
    else:
        moment = time.replace(tzinfo=UTC) if time.tzinfo is None else time
        stamp = ("ce_time", rfc3339(moment).encode())
        timestamp_ms = int(moment.timestamp() * 1000)
    kind = type(payload)
    id_header = ("ce_id", (event_id or new_id()).encode())
    source_header = ("ce_source", source.encode())
    type_header = _TYPE_HEADERS.get(kind) or ("ce_type", kind.type.encode())
    headers: tuple[tuple[str, bytes], ...] = (
        SPECVERSION_HEADER,
        id_header,
        source_header,
        type_header,
        stamp,
        CONTENT_TYPE_HEADER,
    )
    if subject is not None:
        headers += (("ce_subject", subject.encode()),)
    key = payload.key()
    return Record(
        topic, _json(payload), None if key is None else key.encode(), headers, None, timestamp_ms
    )


def decode(message: Message, *, max_bytes: int | None = None) -> Envelope:
    """The event a message carries; ContractError says precisely why when it carries none."""
    if max_bytes is not None and len(message.value) > max_bytes:
        raise ContractError(f"value of {len(message.value)} bytes exceeds the limit of {max_bytes}")
    event_id, source, kind, time, subject = attributes(message.headers)
    payload_type = PAYLOADS.get(kind)
    if payload_type is None:
        raise ContractError(f"unknown ce_type {kind!r}; known: {sorted(PAYLOADS)}")
    try:
        # What model_validate_json does, less its Python wrapper.
        payload: Payload = payload_type.__pydantic_validator__.validate_json(message.value)
    except ValidationError as error:
        error = _as_declared(payload_type, message.value, error)
        raise ContractError(f"invalid {kind} data: {_first_problem(error)}") from None
    return Envelope(
        event_id,
        source,
        kind,
        None if time is None else parse_time(time),
        subject,
        payload,
        message,
    )


def decode_batch(
    messages: list[Message], *, max_bytes: int | None = None
) -> tuple[list[Envelope], list[tuple[Message, str]]]:
    """Decode what can be decoded; return the rest with the reason, for the dead-letter topic."""
    decoded: list[Envelope] = []
    rejected: list[tuple[Message, str]] = []
    for message in messages:
        try:
            decoded.append(decode(message, max_bytes=max_bytes))
        except ContractError as error:
            rejected.append((message, str(error)))
    return decoded, rejected


def _json(payload: Payload) -> bytes:
    kind = type(payload)
    if kind in _PLAIN_JSON:
        try:
            written = orjson.dumps(payload.__dict__, option=orjson.OPT_UTC_Z)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, say, which pydantic writes and orjson refuses
        else:
            # orjson's bytes sit in a block sized for its working buffer. Records live until
            # their batch is published, and a batch of such blocks makes the heap grow on every
            # call (page faults: several times the cost of the encoding); an exact copy leaves
            # the block free for the next call.
            return memoryview(written).tobytes()
    return kind.__pydantic_serializer__.to_json(payload)


class _DeclaredFeatureEvent(FeatureEvent):
    """A FeatureEvent whose features' union runs in its declared order, in JSON too."""

    features: dict[str, Value | None]


_DECLARED: dict[type[Payload], type[Payload]] = {FeatureEvent: _DeclaredFeatureEvent}


def _as_declared(
    payload_type: type[Payload], value: bytes, error: ValidationError
) -> ValidationError:
    # Features' JSON union runs in its own order, for speed (see meander.events.values), and so
    # do its errors; a bad event is rare, and validating it again names the problem as always.
    declared = _DECLARED.get(payload_type)
    if declared is not None:
        try:
            declared.__pydantic_validator__.validate_json(value)
        except ValidationError as again:
            return again
    return error


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "(value)"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {problem['msg']}{more}"
