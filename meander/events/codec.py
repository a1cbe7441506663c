"""Payloads on the wire: CloudEvents 1.0 in Kafka binary mode, and back from any encoding.

meander writes binary mode: attributes travel as ``ce_*`` headers (``datacontenttype`` as
``content-type``), the payload as JSON in the value, and the event id or an entity key as the
Kafka key, which CloudEvents readers see as the ``partitionkey`` extension; :func:`encode_json`
writes the payload alone, for readers that ignore headers. It reads, told apart per record,
binary mode, structured mode (:mod:`~meander.events.structured`) and plain JSON
(:mod:`~meander.events.plain`). Every event of the closed loop goes through here several times,
so the common path, binary mode as meander writes it, avoids work whose result is known in
advance.

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
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from meander.bus import Message, Record
from meander.bus.base import unreadable
from meander.events.fallbacks import complete, completed, derived_id, record_time
from meander.events.headers import (
    CONTENT_TYPE_HEADER,
    SPECVERSION_HEADER,
    Attributes,
    as_written,
    by_name,
    rfc3339,
    structured,
    time_header,
)
from meander.events.invalid import as_declared, invalid_data
from meander.events.payloads import (
    PAYLOADS,
    Alert,
    FeatureEvent,
    Feedback,
    Payload,
    Prediction,
)
from meander.events.plain import Encoding, Layout, parse_value, plain_data, plain_type
from meander.events.recent import RECENT_LIMIT, Recent
from meander.events.structured import looks_structured, read_structured, structured_attributes
from meander.events.values import new_id
from meander.exceptions import ContractError

__all__ = ["Envelope", "decode", "decode_batch", "encode", "encode_json"]

NULL_VALUE = "the record's value is null (a tombstone): an event is a JSON value"

_TYPE_HEADERS = {kind: ("ce_type", kind.type.encode()) for kind in PAYLOADS.values()}
# Validated, these hold only JSON's own types and datetimes, which orjson writes byte for byte as
# pydantic does (the tests hold the two to it) in a fraction of the time.
_PLAIN_JSON = frozenset({FeatureEvent, Prediction, Feedback, Alert})


@dataclass(frozen=True, slots=True, init=False)
class Envelope:
    """A decoded event: its CloudEvents attributes, its payload, and where it was read.

    ``encoding`` says how it was read. A plain JSON record has no attributes of its own: its id
    is the event's (a label's: one made of where it was read), its source ``/kafka/<topic>``,
    its time the event's (a label's: when it was observed)."""

    id: str
    source: str
    type: str
    time: datetime | None
    subject: str | None
    payload: Payload
    message: Message
    # Binary mode, the envelope of nearly every event, pays nothing for saying so: the other
    # encodings are subclasses (every decoded message builds one, and each field costs a call).
    encoding: ClassVar[Encoding] = "binary"

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


class _Structured(Envelope):
    __slots__ = ()
    encoding = "structured"


class _Json(Envelope):
    __slots__ = ()
    encoding = "json"


class _Flat(Envelope):
    __slots__ = ()
    encoding = "flat"


_ENVELOPES: dict[Encoding, type[Envelope]] = {
    "binary": Envelope,
    "structured": _Structured,
    "json": _Json,
    "flat": _Flat,
}


_SETTERS = tuple(getattr(Envelope, field.name).__set__ for field in fields(Envelope))
# Per CloudEvents type: the payload type, its JSON validator (what model_validate_json calls,
# less its Python wrapper and two attribute lookups), and the fields its data may leave out
# that decode then takes from the record. A Python call or lookup is a good part of what
# decoding a message costs beyond pydantic's own work, and every message comes this way.
_FILLED: dict[type[Payload], frozenset[str]] = {
    FeatureEvent: frozenset({"id", "time"}),
    Feedback: frozenset({"observed_at"}),
}
_READERS: dict[str, tuple[type[Payload], Callable[[bytes], Any], frozenset[str]]] = {
    kind: (cls, cls.__pydantic_validator__.validate_json, _FILLED.get(cls, frozenset()))
    for kind, cls in PAYLOADS.items()
}


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


def encode_json(topic: str, payload: Payload) -> Record:
    """The Kafka record that carries ``payload`` as plain JSON: no headers, the payload's key.

    For readers that ignore headers (a stream's ``encoding.predictions = "json"``); meander
    reads it back like any plain JSON on a stream's topics."""
    key = payload.key()
    return Record(topic, _json(payload), None if key is None else key.encode())


def decode(
    message: Message, *, max_bytes: int | None = None, layout: Layout | None = None
) -> Envelope:
    """The event a message carries, in whichever encoding; ContractError says precisely why
    when it carries none, and what to change. ``layout`` names the fields of a flat JSON object
    of features that are not features (the stream's ``encoding`` settings)."""
    return _decode(message, max_bytes, layout)


def _decode(message: Message, max_bytes: int | None, layout: Layout | None) -> Envelope:
    # Positional, for decode_batch: passing keywords costs more than the call itself.
    value = message.value
    if value is None:
        raise ContractError(unreadable(message) or NULL_VALUE)
    if max_bytes is not None and len(value) > max_bytes:
        raise ContractError(f"value of {len(value)} bytes exceeds the limit of {max_bytes}")
    headers = message.headers
    binary = as_written(headers) or by_name(headers)
    if binary is None:
        return _structured_or_plain(message, value, layout)
    event_id, source, kind, moment, subject = binary
    reader = _READERS.get(kind)
    if reader is None:
        raise _unknown_type(kind, message, "ce_type")
    payload_type, validate_json, filled = reader
    try:
        payload: Payload = validate_json(value)
    except ValidationError as error:
        # A label may leave its event id to the key: read it again with the key's help.
        payload = _from_binary_data(payload_type, message, value, binary, moment, error)
    else:
        if not filled <= payload.__pydantic_fields_set__:  # the data left an id or a time out
            payload = completed(payload, message, event_id, moment)
    return Envelope(event_id, source, kind, moment, subject, payload, message)


def _structured_or_plain(message: Message, value: bytes, layout: Layout | None) -> Envelope:
    if structured(message.headers):
        return _structured(message, *read_structured(value))
    payload_type = plain_type(message.topic)
    parsed = parse_value(value, payload_type)
    if looks_structured(parsed):  # the envelope, with no header to say so
        return _structured(message, *structured_attributes(parsed))
    payload_type, data, encoding = plain_data(message, parsed, layout)
    data = complete(payload_type, data, message, None, None)
    payload = _validated(payload_type, data, encoding, layout)
    if isinstance(payload, FeatureEvent):
        moment = payload.time
        event_id = payload.id
    else:
        moment = payload.observed_at if isinstance(payload, Feedback) else record_time(message)
        event_id = derived_id(message)
    source = f"/kafka/{message.topic}"
    return _ENVELOPES[encoding](event_id, source, payload_type.type, moment, None, payload, message)


def _structured(message: Message, attributes: Attributes, data: dict[str, Any]) -> Envelope:
    event_id, source, kind, moment, subject = attributes
    payload_type = _payload_type(kind, message, "type")
    data = complete(payload_type, data, message, event_id, moment)
    payload = _validated(payload_type, data, "structured")
    return _Structured(event_id, source, kind, moment, subject, payload, message)


def _from_binary_data(
    payload_type: type[Payload],
    message: Message,
    value: bytes,
    binary: Attributes,
    moment: datetime | None,
    error: ValidationError,
) -> Payload:
    if payload_type is Feedback and message.key:
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(data) is dict and "event_id" not in data:
                data = complete(payload_type, data, message, binary[0], moment)
                return _validated(payload_type, data, "binary")
    error = as_declared(payload_type, value, error)
    raise ContractError(invalid_data(payload_type, error, "binary")) from None


def _payload_type(kind: str, message: Message, attribute: str) -> type[Payload]:
    payload_type = PAYLOADS.get(kind)
    if payload_type is None:
        raise _unknown_type(kind, message, attribute)
    return payload_type


def _unknown_type(kind: str, message: Message, attribute: str) -> ContractError:
    try:
        expected = f"; on {message.topic} send {plain_type(message.topic).type}"
    except ContractError:
        expected = f"; known: {sorted(PAYLOADS)}"
    return ContractError(f"unknown {attribute} {kind!r}{expected}")


def _validated(
    payload_type: type[Payload],
    data: dict[str, Any],
    encoding: Encoding,
    layout: Layout | None = None,
) -> Payload:
    try:
        payload: Payload = payload_type.__pydantic_validator__.validate_python(data)
    except ValidationError as error:
        raise ContractError(invalid_data(payload_type, error, encoding, layout)) from None
    return payload


def decode_batch(
    messages: list[Message], *, max_bytes: int | None = None, layout: Layout | None = None
) -> tuple[list[Envelope], list[tuple[Message, str]]]:
    """Decode what can be decoded; return the rest with the reason, for the dead-letter topic.

    No record stops the batch: whatever :func:`decode` raises is the record's reason. A message
    another reader in this process decoded lately in binary mode is not decoded again
    (:mod:`~meander.events.recent`): its envelope depends on nothing else."""
    decoded: list[Envelope] = []
    rejected: list[tuple[Message, str]] = []
    append = decoded.append
    known, remember = _RECENT.get, _RECENT.add
    for message in messages:
        envelope = known(message)
        if envelope is not None and (max_bytes is None or len(message.value or b"") <= max_bytes):
            append(envelope)
            continue
        try:
            envelope = _decode(message, max_bytes, layout)
        except ContractError as error:
            rejected.append((message, str(error)))
        except Exception as error:  # a record no rule foresaw; still only its own problem
            problem = f"cannot be decoded: {type(error).__name__}: {error}"
            rejected.append((message, problem[:500]))
        else:
            append(envelope)
            if type(envelope) is Envelope:  # binary mode: the stream's layout played no part
                remember(message, envelope)
    return decoded, rejected


_RECENT: Recent[Envelope] = Recent()


def keep_decoded(keep: bool) -> None:
    """Whether :func:`decode_batch` keeps envelopes for the next reader of the same message.

    Only the embedded bus hands one message object to several readers; a Kafka bus makes new
    messages on every read, so an entry is never found again, and the entries kept meanwhile
    (4,096 envelopes and their messages) are walked by every collection of the younger
    generations: a kafka-python learner spent 2.0 - 2.1 us of CPU a label in the collector with
    them, 0.6 - 0.7 without (18,000 labels in one process, loaded machine). Set by
    :class:`~meander.runtime.Runtime` from the bus it opens."""
    _RECENT.limit = RECENT_LIMIT if keep else 0


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
