"""API keys with scopes: who is calling, and may they do this.

Keys are random tokens; the configuration holds only their SHA-256 digest, so a leaked config
grants nothing. A presented key is hashed and compared with every configured digest in
constant time. ``admin`` implies ``read`` and ``publish``.

>>> key, digest = new_key()
>>> keys = ApiKeys([ApiKey(name="ci", digest=digest, scopes=["read"])], anonymous=[])
>>> keys.caller(key).name, keys.caller(key).may("read"), keys.caller(key).may("admin")
('ci', True, False)
>>> keys.caller("mnd_wrong") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from meander.config.service import ApiKey, Scope
from meander.services.problems import Refusal

WHERE = ("header", "authorization")  # where a refusal says the problem is

__all__ = ["ApiKeys", "Caller", "digest_of", "new_key", "require"]

PREFIX = "mnd_"


def new_key() -> tuple[str, str]:
    """A fresh key and the digest to configure for it (the key itself is never stored)."""
    key = PREFIX + secrets.token_urlsafe(32)
    return key, digest_of(key)


def digest_of(key: str) -> str:
    """What ``[[service.api_keys]] digest`` holds for ``key``.

    >>> digest_of("mnd_x")[:15]
    'sha256:4f40cd75'
    """
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling (the key's name, or "anonymous") and what they may do."""

    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class ApiKeys:
    """The configured keys, checked in constant time."""

    def __init__(self, keys: Sequence[ApiKey], anonymous: Sequence[Scope]) -> None:
        self._keys = [
            (key.digest.encode(), Caller(key.name, frozenset(key.scopes))) for key in keys
        ]
        self.anonymous = Caller("anonymous", frozenset(anonymous)) if anonymous else None

    def caller(self, key: str) -> Caller | None:
        """The caller ``key`` belongs to, or None."""
        presented = digest_of(key).encode()
        found: Caller | None = None
        for digest, caller in self._keys:  # no early exit: every key costs the same
            if hmac.compare_digest(presented, digest):
                found = caller
        return found


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


def require(scope: Scope) -> Callable[..., Caller]:
    """A dependency that lets a request through only with a key (or anonymity) allowing ``scope``.

    401 without a valid key, 403 with a key that lacks the scope.
    """

    def check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> Caller:
        keys: ApiKeys = request.app.state.keys
        presented = header or (bearer.credentials if bearer is not None else None)
        if presented is None:
            caller = keys.anonymous
            if caller is None:
                raise Refusal(
                    401,
                    WHERE,
                    "an API key is required: send it as 'Authorization: Bearer <key>' or "
                    "'X-API-Key: <key>'",
                    "unauthorized",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        else:
            found = keys.caller(presented)
            if found is None:
                raise Refusal(
                    401,
                    WHERE,
                    "the API key is not valid",
                    "unauthorized",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            caller = found
        if not caller.may(scope):
            message = f"the key {caller.name!r} lacks the {scope!r} scope"
            raise Refusal(403, WHERE, message, "forbidden")
        return caller

    return check


def scoped(scope: Scope) -> object:
    """``Depends(require(scope))``, for a route's ``dependencies=[...]``."""
    return Depends(require(scope))
