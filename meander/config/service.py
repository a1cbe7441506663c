"""The HTTP service's settings: who may call it, how much they may send, what it runs beside.

An API key is never configured in the clear: ``api_keys`` holds its SHA-256 digest, which
``meander keys new`` prints beside the key itself (shown once).

>>> ServiceSettings(api_keys=[ApiKey(name="ci", digest="sha256:" + "0" * 64, scopes=["read"])])
... # doctest: +ELLIPSIS
ServiceSettings(api_keys=[ApiKey(name='ci', digest='sha256:000...', scopes=['read'])], ...)
>>> ApiKey(name="ci", digest="0" * 64, scopes=["read"])
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ApiKey
digest
  String should match pattern '^sha256:[0-9a-f]{64}$' ...
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from meander.config.limits import HOUR, YEAR, Bytes, Count, Timeout, Window, at_most
from meander.vocabulary import ComponentName

__all__ = ["SCOPES", "ApiKey", "Scope", "ServiceSettings"]

Scope = Literal["publish", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("publish", "read", "admin")


class ApiKey(BaseModel):
    """One caller: a name for the logs, the digest of its key, what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100)
    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256: and the hex SHA-256 of the key, as `meander keys new` prints it",
    )
    scopes: list[Scope] = Field(min_length=1, description="admin implies read and publish")


class ServiceSettings(BaseModel):
    """``[service]``: keys, limits, retries, webhook targets, components run in the service."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    api_keys: list[ApiKey] = Field(default_factory=list)
    anonymous_scopes: list[Scope] = Field(
        default_factory=list,
        description="what a request without a key may do; empty answers 401 (the demo opens all)",
    )
    max_body_bytes: Bytes = Field(
        default=16 * 1024 * 1024, description="larger request bodies get 413"
    )
    max_batch_events: Window = Field(
        default=10_000, description="events or labels one publish request may carry"
    )
    publish_attempts: Count = Field(
        default=3, description="tries before a publish the broker did not acknowledge gets 503"
    )
    publish_timeout_seconds: Timeout = Field(
        default=5.0, description="how long each try waits for the broker's acknowledgement"
    )
    retry_after_seconds: Annotated[
        int, Field(ge=0, le=HOUR), at_most(HOUR, "a client told to wait longer gives up")
    ] = Field(default=5, description="the Retry-After of a 503 while Kafka or Redis is unavailable")
    header_timeout_seconds: Timeout = Field(
        default=10.0,
        description="time a client has to send a request's headers, from connecting or from "
        "the previous response; a connection that has not is closed (408)",
    )
    request_timeout_seconds: Timeout = Field(
        default=60.0,
        description="time a client has to send a whole request, headers and body; a connection "
        "that has not is closed (a response, such as a live feed, is not timed)",
    )
    max_connections: Annotated[
        int | None, Field(gt=0, le=1_000_000), at_most(1_000_000, "each one is a file descriptor")
    ] = Field(
        default=None,
        description="open HTTP connections (live feeds included); one more gets 503 and is "
        "closed. Unset: three quarters of the process's open-files limit (the rest stays for "
        "Kafka, Redis and files)",
    )
    prediction_ttl_seconds: Annotated[
        int, Field(gt=0, le=YEAR), at_most(YEAR, "nothing is kept for more than a year")
    ] = Field(default=86_400, description="how long a prediction can be fetched by its event id")
    allow_private_webhooks: bool = Field(
        default=False,
        description="let subscriptions target loopback, link-local and private addresses",
    )
    components: list[ComponentName] = Field(
        default_factory=list,
        description="loop components to run inside the service process (`meander serve --with`)",
    )
