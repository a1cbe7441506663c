"""Plain JSON: a value with no CloudEvents attributes at all, as most Kafka clients write it.

What a value is read as depends on its topic. On ``S.events``: the payload,
``{"id"?, "time"?, "entity"?, "features": {...}}``, or a flat object of features, whose id and
time fields (not features) the stream names in its ``encoding`` settings. On ``S.feedback``:
``{"event_id"?, "label", "observed_at"?}``, or the label alone; the Kafka key is the event id
when the value names none. On ``S.predictions``: a prediction as meander writes it when the
stream asks for plain JSON predictions. What the value leaves out comes from the record
(:mod:`~meander.events.fallbacks`).

>>> from meander.bus import Message
>>> from types import SimpleNamespace
>>> layout = SimpleNamespace(id_field="order", time_field=None)
>>> message = Message("shop.events", 0, 7, None, b"", (), 0)
>>> payload_type, data, encoding = plain_data(message, {"order": 12, "amount": 3.5}, layout)
>>> payload_type.__name__, data, encoding
('FeatureEvent', {'id': '12', 'features': {'amount': 3.5}}, 'flat')
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import orjson

from meander.bus import Message
from meander.events.fallbacks import key_text
from meander.events.headers import STRUCTURED_CONTENT_TYPE
from meander.events.payloads import FeatureEvent, Feedback, Payload, Prediction
from meander.exceptions import ContractError
from meander.problems import not_utf8

__all__ = ["Encoding", "Layout", "flat_hint", "parse_value", "plain_data", "plain_type"]

Encoding = Literal["binary", "structured", "json", "flat"]
"""How a record was read: a CloudEvent in binary or structured mode, a plain JSON payload, or
a plain JSON flat object of features."""


class Layout(Protocol):
    """Which fields of a flat object of features are not features (a stream's ``encoding``)."""

    @property
    def id_field(self) -> str | None: ...

    @property
    def time_field(self) -> str | None: ...


_PLAIN_TYPES: dict[str, type[Payload]] = {
    "events": FeatureEvent,
    "feedback": Feedback,
    "predictions": Prediction,
}
_CLOUDEVENT = f"a CloudEvent (ce_* headers, or content-type {STRUCTURED_CONTENT_TYPE})"
_EVENT_SHAPES = 'a JSON object of features, or {"id": ..., "time": ..., "features": {...}}'
_FEEDBACK_SHAPES = '{"event_id": ..., "label": ...}, or the label alone keyed by the event id'
_SHAPES = {FeatureEvent: _EVENT_SHAPES, Feedback: _FEEDBACK_SHAPES, Prediction: "a prediction"}
_NESTED = (dict, list)


def plain_type(topic: str) -> type[Payload]:
    """What plain JSON on ``topic`` is; ContractError on topics that carry CloudEvents only."""
    payload_type = _PLAIN_TYPES.get(topic.rpartition(".")[2])
    if payload_type is None:
        raise ContractError(
            f"no ce_* headers: {topic} carries meander's CloudEvents only (binary mode, with "
            "ce_specversion, ce_id, ce_source and ce_type headers)"
        )
    return payload_type


def parse_value(value: bytes, payload_type: type[Payload]) -> Any:
    """The value of a record with no CloudEvents headers, parsed."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        why = not_utf8(value) or error
        raise ContractError(
            f"not JSON ({why}) and no ce_* headers: send {_SHAPES[payload_type]}, or {_CLOUDEVENT}"
        ) from None


def plain_data(
    message: Message, value: Any, layout: Layout | None
) -> tuple[type[Payload], dict[str, Any], Encoding]:
    """What plain JSON ``value`` on ``message``'s topic holds: its payload type, the payload's
    fields as far as the value gives them, and which shape it had."""
    payload_type = plain_type(message.topic)
    if payload_type is FeatureEvent:
        return _event(message, value, layout)
    if payload_type is Feedback:
        return Feedback, _feedback(message, value), "json"
    if type(value) is not dict:
        raise ContractError(f"a JSON {_json_kind(value)} where a prediction object belongs")
    return payload_type, value, "json"


def flat_hint(topic: str, layout: Layout | None) -> str:
    """What to change when a flat object of features does not fit the stream's schema."""
    stream = topic.rpartition(".")[0]
    named = [
        f"{name}={getattr(layout, name)!r}"
        for name in ("id_field", "time_field")
        if layout is not None and getattr(layout, name)
    ]
    now = f" (now {', '.join(named)})" if named else ""
    return (
        "; there was no features object and no ce_* headers, so every field was read as a "
        f"feature: name the fields that are not features with streams.{stream}.encoding."
        f'id_field and time_field{now}, or send {{"id": ..., "time": ..., "features": {{...}}}}'
    )


def _event(
    message: Message, value: Any, layout: Layout | None
) -> tuple[type[Payload], dict[str, Any], Encoding]:
    if type(value) is not dict:
        raise ContractError(
            f"a JSON {_json_kind(value)} with no ce_* headers: send {_EVENT_SHAPES}, "
            f"or {_CLOUDEVENT}"
        )
    if "features" in value and type(value["features"]) is dict:
        _id_as_text(value, "id")
        return FeatureEvent, value, "json"
    id_field = layout.id_field if layout is not None else None
    time_field = layout.time_field if layout is not None else None
    data: dict[str, Any] = {}
    features = {}
    for name, field in value.items():
        if name == id_field:
            data["id"] = field
        elif name == time_field:
            data["time"] = field
        elif isinstance(field, _NESTED):
            raise ContractError(
                "no features object and no ce_* headers, so the object was read as flat "
                f"features, and {name!r} is a JSON {_json_kind(field)}: send "
                '{"id": ..., "features": {...}}, or a flat object whose values are numbers, '
                "text, booleans or null"
            )
        else:
            features[name] = field
    if not features:
        raise ContractError(
            f"no features in {_show(message.value)}: send {_EVENT_SHAPES}, or {_CLOUDEVENT}"
        )
    data["features"] = features
    _id_as_text(data, "id")
    return FeatureEvent, data, "flat"


def _feedback(message: Message, value: Any) -> dict[str, Any]:
    if type(value) is dict:
        if "label" not in value:
            raise ContractError(f'no "label" in the feedback: send {_FEEDBACK_SHAPES}')
        data = value
    elif value is not None and not isinstance(value, _NESTED):
        data = {"label": value}
    else:
        raise ContractError(f"a JSON {_json_kind(value)} as feedback: send {_FEEDBACK_SHAPES}")
    _id_as_text(data, "event_id")
    if "event_id" not in data and key_text(message) is None:
        raise ContractError(
            'no "event_id" in the feedback and no Kafka key: send {"event_id": ..., "label": '
            "...}, or key the record by the event id"
        )
    return data


def _id_as_text(data: dict[str, Any], name: str) -> None:
    # Database rows and most producers number their records: 12 is the id "12".
    if type(data.get(name)) is int:
        data[name] = str(data[name])


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _show(value: bytes | None) -> str:
    if value is None:
        return "null"
    text = value[:60].decode("utf-8", "replace")
    return text + ("..." if len(value) > 60 else "")
