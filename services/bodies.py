"""Reading a publish body: one JSON object, a JSON array of them, or NDJSON, item by item.

Each item is validated on its own, and a problem is reported the way FastAPI reports any other
(422, ``detail`` with ``loc`` and ``msg``), with the item's index in the location, so a client
sees which event of a batch is wrong and why. Nothing of a batch is published when any item is
wrong.

>>> items(b'{"a": 1}', "application/json")
[{'a': 1}]
>>> items(b'{"a": 1}\\n\\n{"a": 2}\\n', "application/x-ndjson")
[{'a': 1}, {'a': 2}]
>>> items(b"[1, 2", "application/json")
Traceback (most recent call last):
  ...
fastapi.exceptions.RequestValidationError: ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = ["NDJSON", "invalid", "items", "request_body", "validated"]

NDJSON = "application/x-ndjson"
Model = TypeVar("Model", bound=BaseModel)


def items(body: bytes, content_type: str) -> list[Any]:
    """The items of ``body``: a JSON object or array, or one JSON value per NDJSON line."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (NDJSON, "application/ndjson", "application/jsonl"):
        return [_json(line, ("body", number)) for number, line in _lines(body)]
    if media not in ("application/json", ""):
        raise HTTPException(
            415, f"unsupported Content-Type {media!r}: send application/json or {NDJSON}"
        )
    value = _json(body, ("body",))
    return value if isinstance(value, list) else [value]


def validated(model: type[Model], raw: Sequence[Any], limit: int) -> list[Model]:
    """Every item as ``model``; 422 listing the problems of every wrong item, 413 over ``limit``."""
    if not raw:
        raise invalid([], "the body holds no items: send one object, an array or NDJSON lines")
    if len(raw) > limit:
        raise HTTPException(
            413, f"{len(raw)} items in one request; the limit is {limit}: split the batch"
        )
    adapter = TypeAdapter(model)
    good: list[Model] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            good.append(adapter.validate_python(item))
        except ValidationError as error:
            problems += [
                {"loc": ["body", index, *p["loc"]], "msg": p["msg"], "type": p["type"]}
                for p in error.errors(include_url=False, include_input=False)
            ]
    if problems:
        raise RequestValidationError(problems)
    return good


def invalid(loc: Sequence[str | int], message: str) -> RequestValidationError:
    """A 422 about the body at ``loc``, worded like FastAPI's own."""
    return RequestValidationError([{"loc": ["body", *loc], "msg": message, "type": "value_error"}])


def request_body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a publish route: one item or an array, or NDJSON."""
    one_or_many = {"oneOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": one_or_many, "example": example},
                NDJSON: {"schema": {"type": "string"}},
            },
        }
    }


def _lines(body: bytes) -> list[tuple[int, bytes]]:
    return [(n, line) for n, line in enumerate(body.split(b"\n")) if line.strip()]


def _json(text: bytes, loc: tuple[str | int, ...]) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise invalid(loc[1:], f"not valid JSON: {error}") from None
