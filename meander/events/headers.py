"""CloudEvents attributes as Kafka headers (binary mode): what encode writes, and reading them.

Headers as :func:`~meander.events.codec.encode` writes them are read by position, anything else
by name, in any case, as other writers may spell them.

>>> attributes((
...     ("ce_specversion", b"1.0"),
...     ("ce_id", b"e1"),
...     ("ce_source", b"/elsewhere"),
...     ("CE_TYPE", b"io.meander.feedback.v1"),
...     ("content-type", b"application/json; charset=utf-8"),
... ))
('e1', '/elsewhere', 'io.meander.feedback.v1', None, None)
>>> time_header(1_767_323_045_678)
('ce_time', b'2026-01-02T03:04:05.678Z')
"""

from __future__ import annotations

import time as clock
from collections.abc import Sequence
from datetime import UTC, datetime

from meander.exceptions import ContractError

__all__ = [
    "CONTENT_TYPE",
    "CONTENT_TYPE_HEADER",
    "SPECVERSION",
    "SPECVERSION_HEADER",
    "Attributes",
    "attributes",
    "parse_time",
    "rfc3339",
    "time_header",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
_SPECVERSION_BYTES = SPECVERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()
SPECVERSION_HEADER = ("ce_specversion", _SPECVERSION_BYTES)
CONTENT_TYPE_HEADER = ("content-type", _CONTENT_TYPE_BYTES)

Attributes = tuple[str, str, str, str | None, str | None]
"""What a message's headers say: the event's id, source, type, time and subject."""

# The names of the headers encode writes, in its order; ce_subject follows when there is one.
_WRITTEN = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")
_ATTRIBUTE_HEADERS = {
    f"ce_{name}": name
    for name in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype")
}


def attributes(headers: Sequence[tuple[str, bytes]]) -> Attributes:
    """The attributes ``headers`` carry; ContractError says precisely why when they carry none."""
    return _as_written(headers) or _by_name(headers)


def _as_written(headers: Sequence[tuple[str, bytes]]) -> Attributes | None:
    # The headers encode writes, in its order and with its constant values, read by position: a
    # third of the work of reading them by name. Anything else, or any doubt, goes by name.
    subject = None
    if len(headers) == len(_WRITTEN) + 1:
        name, subject = headers[-1]
        if name != "ce_subject":
            return None
        headers = headers[:-1]
    elif len(headers) != len(_WRITTEN):
        return None
    (n0, spec), (n1, event_id), (n2, source), (n3, kind), (n4, time), (n5, content) = headers
    if (
        (n0, n1, n2, n3, n4, n5) != _WRITTEN
        or spec != _SPECVERSION_BYTES
        or content != _CONTENT_TYPE_BYTES
    ):
        return None
    try:
        written = (
            event_id.decode(),
            source.decode(),
            kind.decode(),
            time.decode(),
            None if subject is None else subject.decode(),
        )
    except UnicodeDecodeError:
        return None
    return written if written[0] and written[1] and written[2] else None


def _by_name(headers: Sequence[tuple[str, bytes]]) -> Attributes:
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
    if not (attributes.get("id") and attributes.get("source") and attributes.get("type")):
        missing = [a for a in ("id", "source", "type") if not attributes.get(a)]
        raise ContractError(f"missing required CloudEvents header(s): ce_{', ce_'.join(missing)}")
    if (
        content_type is not None
        and content_type != CONTENT_TYPE
        and content_type.split(";")[0].strip() != CONTENT_TYPE
    ):
        raise ContractError(f"content-type {content_type!r} is not {CONTENT_TYPE}")
    return (
        attributes["id"],
        attributes["source"],
        attributes["type"],
        attributes.get("time"),
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
        raise ContractError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
