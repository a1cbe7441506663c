"""What pydantic found wrong with a value, said once per field and never quoting the value.

Pydantic reports a value that fits no member of a union once per member (``label.bool: Input
should be a valid boolean``, then ``label.int``, ``label.float``, ``label.str``); a reader wants
one line for the field, saying what it takes and what it got. Problems never carry the input:
whoever reads them (an HTTP client, a dead-letter reason) sent it, and it may not even be
writable as JSON (NaN, a lone surrogate).

>>> from pydantic import BaseModel, ValidationError
>>> class Feedback(BaseModel):
...     event_id: str
...     label: bool | int | float | str
>>> try:
...     Feedback.model_validate({"event_id": "e1", "label": None})
... except ValidationError as error:
...     caught = error
>>> [problem] = problems(caught.errors(include_url=False))
>>> problem.loc, problem.type
(('label',), 'type_error')
>>> summary(caught)
'label: must be a boolean, an integer, a number or a string, not null'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

__all__ = ["MAX_MESSAGE", "Problem", "kind_of", "not_utf8", "problems", "summary"]

MAX_MESSAGE = 300  # characters of a message: enough to say what is wrong, not to echo a body

# The tags pydantic puts after a union's location, one per member, and how to name them.
_MEMBERS = {
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "none": "null",
    "list": "an array",
    "dict": "an object",
}


class Problem(NamedTuple):
    """One thing wrong: where (``loc``), what (``msg``), and its kind (``type``)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


def problems(errors: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """pydantic's ``errors()`` as problems: a union's members folded into one, no input."""
    found: list[Problem] = []
    members: list[str] = []
    for error in errors:
        loc = tuple(error["loc"])
        member = _member(loc)
        if member is not None and found and found[-1].type == "type_error" and members:
            last = found[-1]
            if last.loc == loc[:-1]:
                members.append(member)
                found[-1] = last._replace(msg=_union(members, error))
                continue
        if member is not None:
            members = [member]
            found.append(Problem(loc[:-1], _union(members, error), "type_error"))
            continue
        members = []
        found.append(Problem(loc, _message(error), str(error.get("type", "value_error"))))
    return found


def summary(error: ValidationError) -> str:
    """The first problem of ``error`` in one line, with how many more there are."""
    found = problems(error.errors(include_url=False))
    where = ".".join(str(part) for part in found[0].loc) or "(value)"
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    return f"{where}: {found[0].msg}{more}"


def kind_of(value: Any) -> str:
    """The JSON kind of ``value``, as a message names what it got: never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _member(loc: tuple[Any, ...]) -> str | None:
    if len(loc) < 2 or not isinstance(loc[-1], str):
        return None
    tag = loc[-1].split("[", 1)[0]
    return _MEMBERS.get(tag)


def _union(members: list[str], error: Mapping[str, Any]) -> str:
    named = ", ".join(members[:-1]) + (" or " if len(members) > 1 else "") + members[-1]
    got = f", not {kind_of(error['input'])}" if "input" in error else ""
    return f"must be {named}{got}"


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid" and "ctx" in error:
        message = f"not valid JSON: {error['ctx'].get('error', '')}"
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def not_utf8(raw: bytes) -> str | None:
    """Where ``raw`` stops being UTF-8, said for a person; None when it is UTF-8. orjson says
    "str is not valid UTF-8: surrogates not allowed" of Latin-1 text, which sends a reader
    looking for surrogates.

    >>> not_utf8('{"country": "Fé"}'.encode("latin-1"))
    'byte 0xe9 at offset 14 is not UTF-8, and JSON text is UTF-8: encode it as UTF-8'
    >>> not_utf8('{"country": "Fé"}'.encode()) is None
    True
    """
    try:
        raw.decode()
    except UnicodeDecodeError as bad:
        return (
            f"byte {raw[bad.start]:#04x} at offset {bad.start} is not UTF-8, and JSON text is "
            "UTF-8: encode it as UTF-8"
        )
    return None
