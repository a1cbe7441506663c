"""CloudEvents structured mode: the whole event, attributes and data, as the JSON value.

It is what the CloudEvents SDK's ``to_structured`` writes, with the header
``content-type: application/cloudevents+json``; a JSON object with a ``specversion`` key and no
header at all is read the same way.

>>> attributes, data = read_structured(b'{"specversion": "1.0", "id": "e1", "source": "/shop",'
...     b' "type": "io.meander.event.v1", "data": {"features": {"amount": 3.5}}}')
>>> attributes
('e1', '/shop', 'io.meander.event.v1', None, None)
>>> data
{'features': {'amount': 3.5}}
"""

from __future__ import annotations

from typing import Any

import orjson

from meander.events.headers import SPECVERSION, STRUCTURED_CONTENT_TYPE, Attributes, parse_time
from meander.exceptions import ContractError
from meander.problems import not_utf8

__all__ = ["looks_structured", "read_structured", "structured_attributes"]

_REQUIRED = ("id", "source", "type")
_NEEDS = 'a structured-mode event needs "specversion": "1.0", "id", "source", "type" and "data"'


def looks_structured(value: Any) -> bool:
    """True for a parsed JSON value that is a CloudEvent: an object with a specversion."""
    return type(value) is dict and "specversion" in value


def read_structured(value: bytes) -> tuple[Attributes, dict[str, Any]]:
    """The attributes and the data of a structured-mode value."""
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        why = not_utf8(value) or error
        raise ContractError(
            f"content-type {STRUCTURED_CONTENT_TYPE} but the value is not JSON ({why}): "
            f"send the event as one JSON object ({_NEEDS})"
        ) from None
    return structured_attributes(envelope)


def structured_attributes(envelope: Any) -> tuple[Attributes, dict[str, Any]]:
    """The attributes and the data of a structured-mode event, parsed."""
    if type(envelope) is not dict:
        raise ContractError(
            f"a structured-mode event must be a JSON object, got {type(envelope).__name__}: "
            f"{_NEEDS}"
        )
    if envelope.get("specversion") != SPECVERSION:
        raise ContractError(
            f"structured-mode event with specversion {envelope.get('specversion')!r}: meander "
            f'reads CloudEvents {SPECVERSION}; send "specversion": "{SPECVERSION}"'
        )
    missing = [name for name in _REQUIRED if not _text(envelope.get(name))]
    if missing:
        raise ContractError(
            f"structured-mode event without {', '.join(missing)} (or not text): {_NEEDS}"
        )
    content = envelope.get("datacontenttype")
    if content is not None and not _is_json(content):
        raise ContractError(
            f"datacontenttype {content!r}: meander reads JSON data; send the data as a JSON "
            'object under "data", with datacontenttype application/json or none'
        )
    data = envelope.get("data")
    if type(data) is not dict:
        found = "data_base64" if "data_base64" in envelope else f"data {_kind(data)}"
        raise ContractError(
            f"structured-mode event with {found}: send the payload as a JSON object under "
            '"data" (for an event, {"features": {...}})'
        )
    time, subject = envelope.get("time"), envelope.get("subject")
    for name, attribute in (("time", time), ("subject", subject)):
        if attribute is not None and not isinstance(attribute, str):
            raise ContractError(f"structured-mode {name} must be text, got {attribute!r}")
    moment = None if time is None else parse_time(time)
    return (envelope["id"], envelope["source"], envelope["type"], moment, subject), data


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_json(content_type: Any) -> bool:
    if not isinstance(content_type, str):
        return False
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _kind(data: Any) -> str:
    return "missing" if data is None else f"of type {type(data).__name__}"
