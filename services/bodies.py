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

import zlib
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from meander.problems import not_utf8
from meander.schema import shown
from meander.services.problems import Refusal

__all__ = ["NDJSON", "invalid", "items", "refuse_any", "request_body", "validated"]

NDJSON = "application/x-ndjson"
Model = TypeVar("Model", bound=BaseModel)


def items(
    body: bytes, content_type: str, content_encoding: str = "identity", max_bytes: int = 2**30
) -> list[Any]:
    """The items of ``body``: a JSON object or array, or one JSON value per NDJSON line; a
    gzip body is read decompressed, up to ``max_bytes``."""
    media = content_type.split(";", 1)[0].strip().lower()
    encoding = content_encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _gunzip(body, max_bytes)
    elif encoding not in ("identity", ""):
        raise _unsupported(
            "content-encoding",
            f"unsupported Content-Encoding {shown(encoding)}: send the body uncompressed or gzip",
        )
    if not body.strip():
        raise invalid([], "the body is empty: send one object, an array or NDJSON lines", "missing")
    if media in (NDJSON, "application/ndjson", "application/jsonl"):
        return [_json(line, ("body", number)) for number, line in _lines(body)]
    if media not in ("application/json", ""):
        raise _unsupported(
            "content-type",
            f"unsupported Content-Type {shown(media)}: send application/json or {NDJSON}",
        )
    value = _json(body, ("body",))
    return value if isinstance(value, list) else [value]


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """``body`` decompressed, never past ``max_bytes`` (a small body can inflate a thousandfold)."""
    inflater = zlib.decompressobj(wbits=31)  # gzip's header and trailer
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise invalid([], f"not gzip, as Content-Encoding says: {error}", "gzip_invalid") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        message = f"the body is larger than the limit of {max_bytes} bytes once decompressed"
        raise Refusal(413, ["body"], message, "too_large")
    if not inflater.eof or inflater.unused_data:
        raise invalid([], "the gzip body is cut short, or followed by more", "gzip_invalid")
    return data


def _unsupported(header: str, message: str) -> Refusal:
    """415: the body comes in a form the service does not read, which ``header`` names."""
    return Refusal(415, ["header", header], message, "unsupported_media_type")


def validated(model: type[Model], raw: Sequence[Any], limit: int) -> list[Model]:
    """Every item as ``model``; 422 listing the problems of every wrong item, 413 over ``limit``."""
    if not raw:
        raise invalid([], "the body holds no items: send one object, an array or NDJSON lines")
    if len(raw) > limit:
        message = f"{len(raw)} items in one request; the limit is {limit}: split the batch"
        raise Refusal(413, ["body"], message, "too_large")
    adapter = TypeAdapter(model)
    good: list[Model] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            good.append(adapter.validate_python(item))
        except ValidationError as error:
            problems += [
                {**p, "loc": ("body", index, *p["loc"])} for p in error.errors(include_url=False)
            ]
    if problems:
        raise RequestValidationError(problems)
    return good


def invalid(
    loc: Sequence[str | int], message: str, kind: str = "value_error"
) -> RequestValidationError:
    """A 422 about the body at ``loc``, worded like FastAPI's own."""
    return RequestValidationError([{"loc": ["body", *loc], "msg": message, "type": kind}])


Check = tuple[Sequence[str | int], str, str | None]
"""Where in the body, the kind of problem, and the problem (None when there is none)."""


def refuse_any(checks: Iterable[Iterable[Check]]) -> None:
    """A 422 listing every problem the checks of each item found, when any did."""
    problems = [
        {"loc": ["body", *loc], "msg": problem, "type": kind}
        for item in checks
        for loc, kind, problem in item
        if problem is not None
    ]
    if problems:
        raise RequestValidationError(problems)


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
        why = not_utf8(text) or error
        raise invalid(loc[1:], f"not valid JSON: {why}", "json_invalid") from None
