"""The notifier's settings (``[notifier]``): configured webhooks, retries, its consumer group.

Subscriptions made through the API live in Redis (:mod:`meander.consumers.notifier.subscriptions`);
these are the ones a deployment fixes in its config file.

>>> NotifierSettings(webhooks=[{"url": "https://hooks.example/in"}]).webhooks[0].min_severity
'info'
>>> WebhookSettings(url="ftp://hooks.example/in")
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for WebhookSettings
url
  Value error, must be an http:// or https:// URL, got 'ftp://hooks.example/in' ...
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from meander.config.limits import Seconds, Timeout, at_most
from meander.vocabulary import KINDS, Severity

__all__ = ["NotifierSettings", "WebhookSettings"]

# Each retry waits twice as long as the one before: 20 of 0.5 s wait six days in all.
Retries = Annotated[
    int, Field(ge=0, le=20), at_most(20, "each retry waits twice as long as the one before")
]


class WebhookSettings(BaseModel):
    """One subscriber that receives alerts and model events as JSON POSTs."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    url: str
    kinds: list[str] = Field(
        default_factory=list, description="alert kinds or model actions to send; empty sends all"
    )
    streams: list[str] = Field(default_factory=list, description="empty sends every stream")
    min_severity: Severity = "info"
    secret: SecretStr | None = Field(
        default=None,
        description="signs each delivery: X-Meander-Signature is the HMAC-SHA256 of "
        "'<X-Meander-Timestamp>.<body>'",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {url[:40]!r}")
        return url

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        # A misspelt kind matched nothing: the webhook was silently never called.
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError(
                    f"{kind[:40]!r} is no alert kind or model action: use {', '.join(KINDS)}"
                )
        return kinds


class NotifierSettings(BaseModel):
    """Where the notifier delivers alerts and model events, and how hard it tries."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    webhooks: list[WebhookSettings] = Field(default_factory=list)
    retries: Retries = 3
    timeout_seconds: Timeout = Field(
        default=5.0, description="how long one delivery attempt may take, from connect to answer"
    )
    backoff_seconds: Timeout = Field(
        default=0.5, description="the first retry's delay; each further retry waits twice as long"
    )
    group: str = Field(
        default="meander-notifier",
        min_length=1,
        description="the notifiers' consumer group: each event is announced once per group",
    )
    remember_seconds: Seconds = Field(
        default=7 * 24 * 3600.0,
        description="how long the notifier remembers whom it told of an event, so that reading "
        "it again (a restart, a failed commit) never announces it twice; Kafka keeps a group's "
        "offsets as long by default",
    )
