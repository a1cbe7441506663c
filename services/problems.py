"""One shape for every refused request, and request bodies read as strictly as JSON is written.

Every 4xx answer is ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}, ...]}``, one
entry per problem: ``loc`` says where (``["body", 3, "features"]`` for the features of a
batch's fourth item, ``["path", "stream"]``, ``["query", "limit"]``, ``["header",
"content-type"]``), ``msg`` what is wrong and what would do, ``type`` the kind of problem. An
answer never quotes the request's input: it may be large, private, or not even writable as
JSON (NaN, a lone surrogate), and the client has it already.

Bodies are parsed with orjson, which takes only what JSON allows: no NaN or Infinity, no lone
surrogate or invalid UTF-8, no number beyond a double, nesting of at most 1,024 levels. The
rest is a 422 like any other malformed body, never a server error.

>>> from fastapi import APIRouter, FastAPI
>>> from fastapi.testclient import TestClient
>>> from pydantic import BaseModel
>>> class Body(BaseModel):
...     reason: str
>>> router = APIRouter(route_class=JSONRoute)
>>> @router.post("/x")
... def take(body: Body) -> str:
...     return body.reason
>>> app = FastAPI()
>>> app.include_router(router)
>>> install(app)
>>> JSON = {"content-type": "application/json"}
>>> answer = TestClient(app).post("/x", content=b'{"reason": NaN}', headers=JSON)
>>> answer.status_code, answer.json()
(422, {'detail': [{'loc': ['body'], 'msg': 'not valid JSON: ...', 'type': 'json_invalid'}]})
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from meander.problems import MAX_MESSAGE, not_utf8, problems

__all__ = ["REFUSALS", "JSONRoute", "Problems", "Refusal", "install", "refused"]

Location = Sequence[str | int]
MAX_PROBLEMS = 100  # listed in one answer; a count says how many more there were
CLIENT_CLOSED = 499  # the status a request is counted with when its client left first
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")  # what a 405 may list

# Where a framework's own refusal is about, and its kind, when the raiser named neither.
_WHERE: dict[int, tuple[tuple[str, ...], str]] = {
    400: (("request",), "bad_request"),
    401: (("header", "authorization"), "unauthorized"),
    403: (("header", "authorization"), "forbidden"),
    404: (("path",), "not_found"),
    409: (("path",), "conflict"),
    413: (("body",), "too_large"),
    415: (("header", "content-type"), "unsupported_media_type"),
}


class Problem(BaseModel):
    """One thing wrong with a request."""

    loc: list[str | int] = Field(
        description="where: body, path, query or header, then the item and field",
        examples=[["body", 3, "features"]],
    )
    msg: str = Field(examples=["feature 'age' = 130 is above its maximum 120"])
    type: str = Field(description="the kind of problem", examples=["schema"])


class Problems(BaseModel):
    """The answer to every refused request (4xx)."""

    detail: list[Problem]


REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problems, "description": text}
    for code, text in (
        (401, "no valid API key"),
        (403, "the key lacks the scope"),
        (404, "no such stream, or no such item"),
        (422, "the request is malformed or does not fit: each problem with where and why"),
    )
}
"""The refusals every route of the API may answer, in the one shape."""


class Refusal(HTTPException):
    """A 4xx answer in the one shape; ``loc`` says where the problem is, ``kind`` what kind."""

    def __init__(
        self,
        status: int,
        loc: Location,
        message: str,
        kind: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.problem = {"loc": list(loc), "msg": _cut(message), "type": kind}


def refused(status: int, loc: Location, message: str, kind: str) -> Refusal:
    """A :class:`Refusal` to raise: ``refused(404, ["path", "stream"], "...", "not_found")``."""
    return Refusal(status, loc, message, kind)


def install(app: FastAPI) -> None:
    """Answer every refusal of ``app`` in the one shape."""
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, _left)


async def _left(_request: Request, _error: Exception) -> Response:
    # The client closed the connection before its body arrived: nothing was done, nobody
    # reads the answer. 499, nginx's "client closed request", keeps it out of the 5xx counts
    # (and the log) that say the service failed.
    return Response(status_code=CLIENT_CLOSED)


async def _invalid(_request: Request, error: RequestValidationError) -> Response:
    found = [
        {"loc": list(p.loc), "msg": p.msg, "type": p.type}
        for p in problems(map(_located, error.errors()))
    ]
    if len(found) > MAX_PROBLEMS:
        more = f"and {len(found) - MAX_PROBLEMS} more problems like these"
        found = [*found[:MAX_PROBLEMS], {"loc": ["body"], "msg": more, "type": "more"}]
    return JSONResponse({"detail": found}, status_code=422)


async def _refused(request: Request, error: StarletteHTTPException) -> Response:
    headers = getattr(error, "headers", None)
    if error.status_code == 405:
        return _not_allowed(request)
    if isinstance(error, Refusal):
        return JSONResponse({"detail": [error.problem]}, error.status_code, headers=headers)
    if error.status_code >= 500:
        return JSONResponse({"detail": error.detail}, error.status_code, headers=headers)
    loc, kind = _WHERE.get(error.status_code, (("request",), "refused"))
    problem = {"loc": list(loc), "msg": _cut(str(error.detail)), "type": kind}
    return JSONResponse({"detail": [problem]}, error.status_code, headers=headers)


def _not_allowed(request: Request) -> Response:
    # Starlette's 405 names the methods of the first route on the path only, while GET, PATCH
    # and DELETE of one resource are three routes: list what every route on the path takes.
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    message = f"{request.method} is not a method of this path; it takes {', '.join(allowed)}"
    problem = {"loc": ["method"], "msg": message, "type": "method_not_allowed"}
    return JSONResponse({"detail": [problem]}, 405, headers={"Allow": ", ".join(allowed)})


def _located(error: dict[str, Any]) -> dict[str, Any]:
    # FastAPI places a JSON syntax error at ("body", <character offset>), which reads like the
    # index of an item (the publish routes' own put an NDJSON line's index there): the offset
    # is in the message already.
    if error.get("type") == "json_invalid" and "ctx" in error:
        return {**error, "loc": tuple(error["loc"])[:1]}
    return error


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


class _StrictJSON(Request):
    """A request whose JSON body orjson parses (its errors are json.JSONDecodeError's kind)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                if (problem := not_utf8(body)) is None:
                    raise
                raise json.JSONDecodeError(problem, "", 0) from None  # FastAPI shows its msg
        return self._json


class JSONRoute(APIRoute):
    """A route whose body is parsed by orjson, strictly, instead of Python's json module."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSON(request.scope, request.receive))

        return strict
