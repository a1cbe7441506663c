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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from meander.bus import Message, Record
from meander.events.payloads import (
    PAYLOADS,
    Alert,
    FeatureEvent,
    Feedback,
    Payload,
    Prediction,
    new_id,
)
from meander.exceptions import ContractError

__all__ = ["CONTENT_TYPE", "SPECVERSION", "Envelope", "decode", "decode_batch", "encode"]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"

_SPECVERSION_HEADER = ("ce_specversion", SPECVERSION.encode())
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
_TYPE_HEADERS = {kind: ("ce_type", kind.type.encode()) for kind in PAYLOADS.values()}
_ATTRIBUTE_HEADERS = {
    f"ce_{name}": name
    for name in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype")
}
# Validated, these hold only JSON's own types and datetimes, which orjson writes byte for byte as
# pydantic does (the tests hold the two to it) in a third of the time.
_PLAIN_JSON = frozenset({FeatureEvent, Prediction, Feedback, Alert})


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded event: its CloudEvents attributes, its payload, and where it was read."""

    id: str
    source: str
    type: str
    time: datetime | None
    subject: str | None
    payload: Payload
    message: Message


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

    ``event_id`` is the CloudEvents id (a new one when None), ``time`` the event time (now when
    None; a naive time is taken as UTC); the record's timestamp is the same instant.
    """
    if time is None:
        stamp, timestamp_ms = _CLOCK.now()
    else:
        moment = time.replace(tzinfo=UTC) if time.tzinfo is None else time
        stamp, timestamp_ms = _rfc3339(moment).encode(), int(moment.timestamp() * 1000)
    kind = type(payload)
    headers: tuple[tuple[str, bytes], ...] = (
        _SPECVERSION_HEADER,
        ("ce_id", (event_id or new_id()).encode()),
        ("ce_source", source.encode()),
        _TYPE_HEADERS.get(kind) or ("ce_type", kind.type.encode()),
        ("ce_time", stamp),
        _CONTENT_TYPE_HEADER,
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
    attributes = _attributes(message.headers)
    kind = attributes["type"]
    payload_type = PAYLOADS.get(kind)
    if payload_type is None:
        raise ContractError(f"unknown ce_type {kind!r}; known: {sorted(PAYLOADS)}")
    try:
        payload = payload_type.model_validate_json(message.value)
    except ValidationError as error:
        raise ContractError(f"invalid {kind} data: {_first_problem(error)}") from None
    time = attributes.get("time")
    return Envelope(
        attributes["id"],
        attributes["source"],
        kind,
        None if time is None else _parse_time(time),
        attributes.get("subject"),
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


class _Clock:
    """Now as a CloudEvents time and as Kafka's milliseconds, formatting each second's date once."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> tuple[bytes, int]:
        return self.stamp(clock.time_ns())

    def stamp(self, nanoseconds: int) -> tuple[bytes, int]:
        """``nanoseconds`` since the epoch as ``_rfc3339`` writes it, and in milliseconds."""
        second, fraction = divmod(nanoseconds, 1_000_000_000)
        # One tuple, read and replaced whole, so threads sharing the clock never see half of it.
        cached, prefix = self._second
        if second != cached:
            prefix = clock.strftime("%Y-%m-%dT%H:%M:%S", clock.gmtime(second))
            self._second = (second, prefix)
        micros = fraction // 1000
        text = f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"
        return text.encode(), nanoseconds // 1_000_000


_CLOCK = _Clock()


def _json(payload: Payload) -> bytes:
    kind = type(payload)
    if kind in _PLAIN_JSON:
        try:
            return orjson.dumps(payload.__dict__, option=orjson.OPT_UTC_Z)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, say, which pydantic writes and orjson refuses
    return kind.__pydantic_serializer__.to_json(payload)


def _attributes(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    content_type = None
    for name, raw in headers:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError(f"header {name!r} is not UTF-8") from None
        attribute = _ATTRIBUTE_HEADERS.get(name)
        if attribute is not None:
            attributes[attribute] = text
            continue
        lowered = name.lower()  # other writers may spell header names in any case
        if lowered.startswith("ce_"):
            attributes[lowered[3:]] = text
        elif lowered == "content-type":
            content_type = text
    if attributes.get("specversion") != SPECVERSION:
        raise ContractError(
            f"not a CloudEvents {SPECVERSION} binary-mode message: ce_specversion is "
            f"{attributes.get('specversion')!r}"
        )
    missing = [a for a in ("id", "source", "type") if not attributes.get(a)]
    if missing:
        raise ContractError(f"missing required CloudEvents header(s): ce_{', ce_'.join(missing)}")
    if (
        content_type is not None
        and content_type != CONTENT_TYPE
        and content_type.split(";")[0].strip() != CONTENT_TYPE
    ):
        raise ContractError(f"content-type {content_type!r} is not {CONTENT_TYPE}")
    return attributes


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "(value)"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {problem['msg']}{more}"


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
