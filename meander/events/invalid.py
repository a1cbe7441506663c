"""Why a payload's data is invalid, worded for the sender: where, what, and what to change.

>>> from pydantic import ValidationError
>>> from meander.events.payloads import Feedback
>>> try:
...     Feedback.__pydantic_validator__.validate_python({"label": 1})
... except ValidationError as error:
...     reason = invalid_data(Feedback, error, "binary")
>>> reason.split("; ")[0]
'invalid io.meander.feedback.v1 data: event_id: Field required'
>>> reason.split("; ")[1]
'send the event id as "event_id", or key the record by it'
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from meander.events.payloads import FeatureEvent, Feedback, Payload
from meander.events.plain import Encoding, Layout
from meander.events.values import Value
from meander.problems import problems

__all__ = ["as_declared", "invalid_data"]

_READ_AS = {
    "binary": "",
    "structured": " (structured mode)",
    "json": " (plain JSON)",
    "flat": " (plain JSON, a flat object of features)",
}
# What to change, by payload type and the kind of the first problem.
_HINTS: dict[tuple[type[Payload], str], str] = {
    (FeatureEvent, "extra_forbidden"): "an event has only id, time, entity and features: put "
    'the features under "features"',
    (FeatureEvent, "missing"): 'send the features as an object under "features"',
    (Feedback, "extra_forbidden"): "feedback has only event_id, label and observed_at",
    (Feedback, "missing"): 'send the event id as "event_id", or key the record by it',
}


def invalid_data(
    payload_type: type[Payload],
    error: ValidationError,
    encoding: Encoding,
    layout: Layout | None = None,
) -> str:
    """The reason ``error`` gives, for data read in ``encoding``; a flat object's fields are
    named as the sender named them, with ``layout``."""
    # A union's errors come as one problem ("must be a boolean, ... not an array"), and no
    # message quotes the sender's value.
    found = problems(error.errors(include_url=False))
    problem = found[0]
    location = problem.loc
    if encoding == "flat":
        where = _flat_name(location, layout)
        hint = None
    else:
        where = ".".join(str(part) for part in location) or "(value)"
        hint = _HINTS.get((payload_type, problem.type))
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    hint = "" if hint is None else f"; {hint}"
    return (
        f"invalid {payload_type.type} data{_READ_AS[encoding]}: {where}: {problem.msg}{more}{hint}"
    )


def _flat_name(location: tuple[Any, ...], layout: Layout | None) -> str:
    if len(location) == 2 and location[0] == "features":
        return repr(location[1])
    if location == ("id",) and layout is not None:
        return f"{layout.id_field!r} (the stream's encoding.id_field)"
    if location == ("time",) and layout is not None:
        return f"{layout.time_field!r} (the stream's encoding.time_field)"
    return ".".join(str(part) for part in location) or "(value)"


class _DeclaredFeatureEvent(FeatureEvent):
    """A FeatureEvent whose features' union runs in its declared order, in JSON too."""

    features: dict[str, Value | None]


_DECLARED: dict[type[Payload], type[Payload]] = {FeatureEvent: _DeclaredFeatureEvent}


def as_declared(
    payload_type: type[Payload], value: bytes, error: ValidationError
) -> ValidationError:
    """``error`` as the declared union order words it: features' JSON union runs in its own
    order, for speed (see :mod:`meander.events.values`), and so do its errors; a bad event is
    rare, and validating it again names the problem as always."""
    declared = _DECLARED.get(payload_type)
    if declared is not None:
        try:
            declared.__pydantic_validator__.validate_json(value)
        except ValidationError as again:
            return again
    return error
