"""Webhooks: who wants a notice, and the signed request that carries it to them.

A webhook is either configured (``[[notifier.webhooks]]``) or a subscription made through the
API; both are signed the same way. Every POST carries

- ``X-Meander-Event-Id``: the event's id, the same on every retry, to drop repeats;
- ``X-Meander-Timestamp``: when this attempt was signed, in Unix seconds;
- ``X-Meander-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the secret, of the
  timestamp, a dot and the body.

A receiver recomputes the HMAC over the raw body it got, compares in constant time, and refuses
a timestamp too far from its clock, so a captured request cannot be replayed later:

>>> import hashlib, hmac
>>> body, timestamp = b'{"id": "42"}', "1700000000"
>>> signature = sign(b"s3cret", body, 1700000000)  # what the notifier sends
>>> expected = "sha256=" + hmac.new(b"s3cret", timestamp.encode() + b"." + body,
...                                 hashlib.sha256).hexdigest()
>>> hmac.compare_digest(expected, signature)
True
>>> verify(b"s3cret", body, timestamp, signature, now=1700000030)
True
>>> verify(b"s3cret", body, timestamp, signature, now=1700003600)  # an hour later: a replay
False
>>> verify(b"wrong", body, timestamp, signature, now=1700000030)
False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from meander.bus import Message
from meander.config import WebhookSettings
from meander.consumers.notifier import alertmanager
from meander.events import Alert, Envelope, ModelEvent
from meander.events.headers import rfc3339
from meander.vocabulary import SEVERITIES

__all__ = [
    "CONTENT_TYPE",
    "TOLERANCE_SECONDS",
    "Format",
    "Notice",
    "Subscribed",
    "Webhook",
    "redact",
    "sign",
    "structured",
    "verify",
]

CONTENT_TYPE = "application/cloudevents+json"
TOLERANCE_SECONDS = 300  # how far a receiver should let a timestamp stray from its clock

Format = Literal["cloudevents", "alertmanager"]


class _Filters(Protocol):
    @property
    def kinds(self) -> Collection[str]: ...
    @property
    def streams(self) -> Collection[str]: ...
    @property
    def min_severity(self) -> str: ...


class Subscribed(Protocol):
    """What a webhook needs of an API subscription (a
    :class:`~meander.consumers.notifier.subscriptions.Subscription` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def format(self) -> Format: ...
    @property
    def filters(self) -> _Filters: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """One event to announce: what filters look at, the body to send, and where it was read.

    ``alert`` is the payload when the event is an alert (other formats are built from it).
    """

    event_id: str
    kind: str
    stream: str
    severity: str
    body: bytes
    message: Message
    alert: Alert | None = None

    @property
    def family(self) -> str:
        """ "alerts" or "models": the channels and log it is announced on."""
        return "models" if self.alert is None else "alerts"

    @classmethod
    def of(cls, envelope: Envelope) -> Notice:
        """The notice of an alert or model event, read as ``envelope``."""
        payload, body = envelope.payload, structured(envelope)
        if isinstance(payload, Alert):
            return cls(
                envelope.id,
                payload.kind,
                payload.stream,
                payload.severity,
                body,
                envelope.message,
                alert=payload,
            )
        assert isinstance(payload, ModelEvent), "only alerts and model events are announced"
        # A rollback means the promoted model did worse in production: worth a look.
        severity = "warning" if payload.action == "rolled_back" else "info"
        return cls(envelope.id, payload.action, payload.stream, severity, body, envelope.message)


def structured(envelope: Envelope) -> bytes:
    """The event as CloudEvents structured-mode JSON, the body of every announcement."""
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
    }
    if envelope.time is not None:
        event["time"] = rfc3339(envelope.time)
    if envelope.subject is not None:
        event["subject"] = envelope.subject
    event["datacontenttype"] = "application/json"
    event["data"] = envelope.payload.model_dump(mode="json")
    return orjson.dumps(event)


def redact(url: str) -> str:
    """``url`` without credentials, query or fragment, safe to log and to dead-letter."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The X-Meander-Signature of ``body`` sent at ``timestamp`` (Unix seconds).

    >>> sign(b"secret", b"{}", 1700000000)
    'sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163'
    """
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def verify(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` signs ``body`` at ``timestamp`` (the headers, as received) with
    ``secret``, and the timestamp is within ``tolerance`` seconds of ``now``."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, body, int(timestamp)).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


class Webhook:
    """One receiver: its URL, filters, format and signing secret.

    ``subscription`` is the id of the API subscription it comes from (None when configured);
    ``checked`` asks for the target check before every delivery (see
    :mod:`meander.consumers.notifier.targets`).

    >>> hook = Webhook.from_settings(WebhookSettings(url="https://user:pw@hooks.example/in?t=x",
    ...                              kinds=["data_drift"], min_severity="warning"))
    >>> hook.label, hook.url, hook.authorization
    ('https://hooks.example/in', 'https://hooks.example/in?t=x', 'Basic dXNlcjpwdw==')
    >>> hook.wants("data_drift", "fraud", "critical"), hook.wants("data_drift", "fraud", "info")
    (True, False)
    """

    def __init__(
        self,
        url: str,
        *,
        kinds: frozenset[str] = frozenset(),
        streams: frozenset[str] = frozenset(),
        min_severity: str = "info",
        secret: str | None = None,
        format: Format = "cloudevents",
        subscription: str | None = None,
        checked: bool = False,
    ) -> None:
        parts = urlsplit(url)
        # urllib ignores credentials in a URL: send them as basic auth, keep them out of logs.
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.label = redact(url)
        self._target = url  # as configured, credentials included: two differ if those do
        self.authorization: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self.kinds = kinds
        self.streams = streams
        self.min_rank = SEVERITIES.index(min_severity)
        self.secret = secret
        self.format = format
        self.subscription = subscription
        self.checked = checked

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> Webhook:
        """A configured webhook (trusted like the rest of the configuration: not checked)."""
        secret = None if settings.secret is None else settings.secret.get_secret_value()
        return cls(
            settings.url,
            kinds=frozenset(settings.kinds),
            streams=frozenset(settings.streams),
            min_severity=settings.min_severity,
            secret=secret,
        )

    @classmethod
    def from_subscription(cls, subscription: Subscribed, secret: str, *, checked: bool) -> Webhook:
        """The webhook of an API subscription; ``checked`` unless private targets are allowed."""
        filters = subscription.filters
        return cls(
            subscription.url,
            kinds=frozenset(filters.kinds),
            streams=frozenset(filters.streams),
            min_severity=filters.min_severity,
            secret=secret,
            format=subscription.format,
            subscription=subscription.id,
            checked=checked,
        )

    @property
    def key(self) -> str:
        """Who this receiver is, across restarts: a subscription's id, or a digest of a
        configured webhook's URL (never the URL itself, which may hold a secret)."""
        if self.subscription is not None:
            return f"subscription:{self.subscription}"
        return "webhook:" + hashlib.sha256(self._target.encode()).hexdigest()[:16]

    def __repr__(self) -> str:  # never the secret, nor credentials in the URL
        return f"Webhook({self.label!r}, subscription={self.subscription!r})"

    def wants(self, kind: str, stream: str, severity: str) -> bool:
        """Whether a notice of this kind, stream and severity passes the filters."""
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.streams or stream in self.streams)
            and SEVERITIES.index(severity) >= self.min_rank
        )

    def accepts(self, notice: Notice) -> bool:
        """Whether ``notice`` passes the filters and can be written in this webhook's format."""
        if self.format == "alertmanager" and notice.alert is None:
            return False  # model lifecycle events have no Alertmanager form
        return self.wants(notice.kind, notice.stream, notice.severity)

    def body(self, notice: Notice) -> tuple[bytes, str]:
        """The body that carries ``notice`` in this webhook's format, and its content type."""
        if self.format == "alertmanager" and notice.alert is not None:
            receiver = self.subscription or "meander"
            body = alertmanager.encode_payload(
                notice.alert, event_id=notice.event_id, receiver=receiver
            )
            return body, alertmanager.CONTENT_TYPE
        return notice.body, CONTENT_TYPE

    def request(self, notice: Notice, *, now: float | None = None) -> urllib.request.Request:
        """The POST that carries ``notice``, signed at ``now`` (Unix seconds, default the clock)."""
        body, content_type = self.body(notice)
        timestamp = int(time.time() if now is None else now)
        headers = {
            "Content-Type": content_type,
            "User-Agent": "meander-notifier",
            "X-Meander-Event-Id": notice.event_id,
            "X-Meander-Timestamp": str(timestamp),
        }
        if self.authorization is not None:
            headers["Authorization"] = self.authorization
        if self.secret is not None:
            headers["X-Meander-Signature"] = sign(self.secret.encode(), body, timestamp)
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")
