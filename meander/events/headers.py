"""CloudEvents attributes as Kafka headers (binary mode): what encode writes, and reading them.

Headers as :func:`~meander.events.codec.encode` writes them are read by position, anything else
by name, in any case, as other writers may spell them. Headers with no ``ce_*`` header, or with a
``content-type`` of ``application/cloudevents...`` (structured mode, whatever else they hold),
carry no binary-mode attributes: :func:`attributes` returns None for them.

>>> attributes((
...     ("ce_specversion", b"1.0"),
...     ("ce_id", b"e1"),
...     ("ce_source", b"/elsewhere"),
...     ("CE_TYPE", b"io.meander.feedback.v1"),
...     ("content-type", b"application/json; charset=utf-8"),
... ))
('e1', '/elsewhere', 'io.meander.feedback.v1', None, None)
>>> attributes((("traceparent", b"00-4bf92f-00f067-01"),)) is None  # not binary mode
True
>>> time_header(1_767_323_045_678)
('ce_time', b'2026-01-02T03:04:05.678Z')
"""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime

from meander.bus.base import ReadHeaders
from meander.exceptions import ContractError

__all__ = [
    "CONTENT_TYPE",
    "CONTENT_TYPE_HEADER",
    "PRODUCER_HEADER",
    "SPECVERSION",
    "SPECVERSION_HEADER",
    "STRUCTURED_CONTENT_TYPE",
    "Attributes",
    "as_written",
    "attributes",
    "by_name",
    "parse_time",
    "rfc3339",
    "structured",
    "time_header",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
_CLOUDEVENTS_MEDIA = "application/cloudevents"  # +json, -batch+json: any CloudEvents format
_SPECVERSION_BYTES = SPECVERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()
SPECVERSION_HEADER = ("ce_specversion", _SPECVERSION_BYTES)
CONTENT_TYPE_HEADER = ("content-type", _CONTENT_TYPE_BYTES)

Attributes = tuple[str, str, str, datetime | None, str | None]
"""What a message's headers say: the event's id, source, type, time and subject."""

# The names of the headers encode writes, in its order; ce_subject follows when there is one.
# The producer component's number of a record (meander.producers.resume), written last.
PRODUCER_HEADER = "meander-producer"
_WRITTEN = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")
_ATTRIBUTE_HEADERS = {
    f"ce_{name}": name
    for name in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype")
}


def attributes(headers: ReadHeaders) -> Attributes | None:
    """The binary-mode attributes ``headers`` carry, None when they are not binary mode; when
    they are but something is wrong, ContractError says what and what to change."""
    return as_written(headers) or by_name(headers)


def structured(headers: ReadHeaders) -> bool:
    """True when a ``content-type`` header says structured mode (``application/cloudevents``,
    in any of its formats): the Kafka binding's rule, whatever other headers there are."""
    return any(
        name.lower() == "content-type"
        and raw is not None
        and raw.decode("utf-8", "replace").lstrip().lower().startswith(_CLOUDEVENTS_MEDIA)
        for name, raw in headers
    )


def as_written(headers: ReadHeaders) -> Attributes | None:
    """The attributes of headers exactly as encode writes them, read by position: a third of
    the work of reading them by name. None for anything else, or any doubt: read those
    :func:`by_name`. (:func:`attributes` does both; the codec calls the two itself, as a
    Python call is a good part of what decoding a message costs.)"""
    subject: bytes | None = None
    count = len(headers)
    if count == 8 and headers[7][0] == PRODUCER_HEADER:  # the producer's number: not ours
        headers = headers[:7]
        count = 7
    if count == 7:  # with ce_subject
        name, subject = headers[6]
        if name != "ce_subject" or subject is None:
            return None
        headers = headers[:6]
    elif count != 6:
        return None
    (n0, spec), (n1, event_id), (n2, source), (n3, kind), (n4, time), (n5, content) = headers
    if (
        (n0, n1, n2, n3, n4, n5) != _WRITTEN
        or spec != _SPECVERSION_BYTES
        or content != _CONTENT_TYPE_BYTES
    ):
        return None
    if event_id is None or source is None or kind is None or time is None:
        return None  # a null value: reading by name says which
    try:
        id_text, source_text, kind_text, time_text = (
            event_id.decode(),
            source.decode(),
            kind.decode(),
            time.decode(),
        )
        subject_text = None if subject is None else subject.decode()
    except UnicodeDecodeError:
        return None
    if not (id_text and source_text and kind_text):
        return None
    try:
        # Parsed here rather than by parse_time: a Python call is a good part of the cost of
        # decoding a message, and every message of the loop comes this way.
        moment = datetime.fromisoformat(time_text)
    except ValueError:
        raise ContractError(_not_rfc3339(time_text)) from None
    return id_text, source_text, kind_text, moment, subject_text


def by_name(headers: ReadHeaders) -> Attributes | None:
    """The attributes of binary-mode headers in any order and case; None when not binary mode."""
    attributes: dict[str, str] = {}
    content_type = None
    for name, raw in headers:
        attribute = _ATTRIBUTE_HEADERS.get(name)
        lowered = name.lower()  # other writers may spell header names in any case
        if attribute is None and lowered.startswith("ce_"):
            attribute = lowered[3:]
        if attribute is None and lowered != "content-type":
            continue  # tracing and the like: not ours to read
        if raw is None:
            raise ContractError(f"header {name!r} has a null value: give it one or leave it out")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError(f"header {name!r} is not UTF-8") from None
        if attribute is not None:
            attributes[attribute] = text
        else:
            content_type = text
    if not attributes or structured(headers):
        return None  # no ce_* header, or structured mode: not binary mode
    if attributes.get("specversion") != SPECVERSION:
        raise ContractError(
            f"not a CloudEvents {SPECVERSION} binary-mode message: ce_specversion is "
            f"{attributes.get('specversion')!r}; send the header ce_specversion: {SPECVERSION} "
            "with the other ce_* headers, or no ce_* header at all for plain JSON"
        )
    if not (attributes.get("id") and attributes.get("source") and attributes.get("type")):
        missing = [a for a in ("id", "source", "type") if not attributes.get(a)]
        raise ContractError(
            f"missing required CloudEvents header(s): ce_{', ce_'.join(missing)}; a binary-mode "
            "event needs ce_specversion, ce_id, ce_source and ce_type (or send plain JSON with "
            "no ce_* header at all)"
        )
    if (
        content_type is not None
        and content_type != CONTENT_TYPE
        and content_type.split(";")[0].strip().lower() != CONTENT_TYPE
    ):
        raise ContractError(
            f"content-type {content_type!r} is not {CONTENT_TYPE}: meander reads JSON data; "
            f"send {CONTENT_TYPE}, or {STRUCTURED_CONTENT_TYPE} with the whole event in the value"
        )
    time = attributes.get("time")
    return (
        attributes["id"],
        attributes["source"],
        attributes["type"],
        None if time is None else parse_time(time),
        attributes.get("subject"),
    )


class _MillisecondTimes:
    """The ``ce_time`` header of a Kafka timestamp. A burst of records shares a few milliseconds,
    so the header of the last one is kept, and the date and time of the last second."""

    def __init__(self) -> None:
        # Tuples read and replaced whole, so that threads sharing them never see half of one.
        self._last: tuple[int, tuple[str, bytes]] = (-1, ("ce_time", b""))
        self._second: tuple[int, str] = (-1, "")

    def header(self, milliseconds: int) -> tuple[str, bytes]:
        last, header = self._last
        if milliseconds == last:
            return header
        second, fraction = divmod(milliseconds, 1000)
        cached, prefix = self._second
        if second != cached:
            prefix = clock.strftime("%Y-%m-%dT%H:%M:%S", clock.gmtime(second))
            self._second = (second, prefix)
        header = ("ce_time", f"{prefix}.{fraction:03d}Z".encode())
        self._last = (milliseconds, header)
        return header


time_header = _MillisecondTimes().header
"""The ``ce_time`` header of a timestamp in milliseconds, to the millisecond."""


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 text, in UTC (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """The moment a ``ce_time`` header gives; ContractError when it is not RFC 3339."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(_not_rfc3339(text)) from None


def _not_rfc3339(text: str) -> str:
    return f"ce_time {text!r} is not an RFC 3339 timestamp"
