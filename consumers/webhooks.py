"""Webhooks: which subscribers want a notice, and getting it to them despite flaky servers.

Each configured webhook has its own delivery thread and bounded outbox, so a slow or dead
endpoint delays only itself, and each endpoint receives notices in the order they were read.
A delivery is retried on connection errors, 5xx and 429 with exponential backoff; whatever
finally fails is handed back with the reason, for the dead-letter topic.

>>> from meander.config import WebhookSettings
>>> hook = Webhook(WebhookSettings(url="https://user:pw@hooks.example/in?token=x",
...                                kinds=["data_drift"], min_severity="warning"))
>>> hook.label, hook.url, hook.authorization
('https://hooks.example/in', 'https://hooks.example/in?token=x', 'Basic dXNlcjpwdw==')
>>> hook.wants("data_drift", "fraud", "critical"), hook.wants("data_drift", "fraud", "info")
(True, False)
>>> sign(b"secret", b"{}")
'sha256=77325902caca812dc259733aacd046b73817372c777b8d95b402647474516e13'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from http.client import HTTPException
from urllib.parse import unquote, urlsplit, urlunsplit

from meander.bus import Message
from meander.config import NotifierSettings, WebhookSettings

__all__ = ["CONTENT_TYPE", "SEVERITIES", "Notice", "Webhook", "Webhooks", "redact", "sign"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Notice:
    """One event to announce: what filters look at, the body to send, and where it was read."""

    event_id: str
    kind: str
    stream: str
    severity: str
    body: bytes
    message: Message


def redact(url: str) -> str:
    """``url`` without credentials, query or fragment, safe to log and to dead-letter."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def sign(secret: bytes, body: bytes) -> str:
    """The X-Meander-Signature of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Webhook:
    """One subscriber's URL, filters and signing secret."""

    def __init__(self, settings: WebhookSettings) -> None:
        parts = urlsplit(settings.url)
        # urllib ignores credentials in a URL: send them as basic auth, keep them out of logs.
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.label = redact(settings.url)
        self.authorization: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self.kinds = frozenset(settings.kinds)
        self.streams = frozenset(settings.streams)
        self.min_rank = SEVERITIES.index(settings.min_severity)
        self.secret = None if settings.secret is None else settings.secret.get_secret_value()

    def wants(self, kind: str, stream: str, severity: str) -> bool:
        """Whether a notice of this kind, stream and severity passes the filters."""
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.streams or stream in self.streams)
            and SEVERITIES.index(severity) >= self.min_rank
        )

    def request(self, notice: Notice) -> urllib.request.Request:
        """The signed POST that carries ``notice``."""
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": "meander-notifier",
            "X-Meander-Event-Id": notice.event_id,
        }
        if self.authorization is not None:
            headers["Authorization"] = self.authorization
        if self.secret is not None:
            headers["X-Meander-Signature"] = sign(self.secret.encode(), notice.body)
        return urllib.request.Request(self.url, data=notice.body, headers=headers, method="POST")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without the body: fail loudly instead.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class _Outbox:
    def __init__(self, webhook: Webhook) -> None:
        self.webhook = webhook
        self.pending: deque[Notice] = deque()
        self.busy = False
        self.thread: threading.Thread | None = None


class Webhooks:
    """The configured webhooks and their delivery threads.

    The caller keeps within :meth:`room` (each notice adds at most one delivery per webhook), so
    :meth:`submit` never blocks; :meth:`take_failures` hands back what could not be delivered.
    """

    def __init__(
        self, settings: NotifierSettings, *, backoff: float = 0.5, capacity: int = 1_000
    ) -> None:
        self.retries = settings.retries
        self.timeout = settings.timeout_seconds
        self.backoff = backoff
        self.capacity = capacity
        self.delivered = 0
        self.failed = 0
        self._outboxes = [_Outbox(Webhook(hook)) for hook in settings.webhooks]
        self._opener = urllib.request.build_opener(_RefuseRedirects)
        self._changed = threading.Condition()
        self._failures: list[tuple[Message, str]] = []
        self._stopping = threading.Event()

    def room(self) -> int:
        """How many notices can be submitted now without passing any outbox's capacity."""
        with self._changed:
            return self._room()

    def wait_for_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every outbox has room for one more."""
        with self._changed:
            return self._changed.wait_for(lambda: self._room() > 0, timeout)

    def submit(self, notice: Notice) -> int:
        """Queue ``notice`` for every webhook that wants it; returns how many want it."""
        wanted = [
            box
            for box in self._outboxes
            if box.webhook.wants(notice.kind, notice.stream, notice.severity)
        ]
        with self._changed:
            if self._stopping.is_set():
                raise RuntimeError("the webhooks are closed; submit before close()")
            for box in wanted:
                box.pending.append(notice)
                if box.thread is None:
                    box.thread = threading.Thread(
                        target=self._run, args=(box,), name=f"webhook {box.webhook.label}"
                    )
                    box.thread.daemon = True  # an endpoint that hangs must not hang the exit
                    box.thread.start()
            self._changed.notify_all()
        return len(wanted)

    def take_failures(self) -> list[tuple[Message, str]]:
        """The (original message, reason) of every delivery that failed since the last call."""
        with self._changed:
            failures, self._failures = self._failures, []
        return failures

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is queued or being delivered."""
        with self._changed:
            return self._changed.wait_for(self._idle, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then give up on the rest.

        What is still queued then becomes a failure (see :meth:`take_failures`), and a delivery
        under way makes no further attempt.
        """
        self.wait_idle(timeout)
        with self._changed:
            self._stopping.set()
            for box in self._outboxes:
                while box.pending:
                    self._fail(box.pending.popleft(), "not delivered: the notifier stopped first")
            self._changed.notify_all()
        for box in self._outboxes:
            if box.thread is not None:
                box.thread.join(self.timeout + 1.0)

    def _room(self) -> int:
        return min(
            (self.capacity - len(box.pending) for box in self._outboxes), default=self.capacity
        )

    def _idle(self) -> bool:
        return not any(box.pending or box.busy for box in self._outboxes)

    def _fail(self, notice: Notice, reason: str) -> None:
        self.failed += 1
        self._failures.append((notice.message, reason))

    def _run(self, box: _Outbox) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: box.pending or self._stopping.is_set())
                if not box.pending:
                    return
                notice = box.pending.popleft()
                box.busy = True
                self._changed.notify_all()
            try:
                problem = self._deliver(box.webhook, notice)
            except Exception as error:  # a bug in one delivery must not end the thread
                log.exception("webhook %s: delivery crashed", box.webhook.label)
                problem = f"delivery crashed: {error!r}"
            with self._changed:
                box.busy = False
                if problem is None:
                    self.delivered += 1
                else:
                    self._fail(notice, problem)
                self._changed.notify_all()

    def _deliver(self, webhook: Webhook, notice: Notice) -> str | None:
        """None once delivered, else why it was not after the last attempt."""
        attempts = 0
        while True:
            attempts += 1
            problem, retry = self._attempt(webhook, notice)
            if problem is None:
                return None
            delay = self.backoff * 2 ** (attempts - 1)
            if not retry or attempts > self.retries or self._stopping.wait(delay):
                log.warning(
                    "webhook %s: event %s failed: %s", webhook.label, notice.event_id, problem
                )
                return f"webhook {webhook.label} failed after {_times(attempts)}: {problem}"

    def _attempt(self, webhook: Webhook, notice: Notice) -> tuple[str | None, bool]:
        """(None, False) when delivered, else (what went wrong, whether to try again)."""
        try:
            with self._opener.open(webhook.request(notice), timeout=self.timeout):
                return None, False
        except urllib.error.HTTPError as error:
            error.close()
            if 300 <= error.code < 400:
                return f"HTTP {error.code} redirect (not followed: configure the final URL)", False
            return f"HTTP {error.code}", error.code >= 500 or error.code == 429
        except urllib.error.URLError as error:
            return f"connection error: {error.reason}", True
        except TimeoutError:
            return f"no answer within {self.timeout:g} s", True
        except (OSError, HTTPException) as error:
            return f"connection error: {type(error).__name__}: {error}", True


def _times(attempts: int) -> str:
    return "1 attempt" if attempts == 1 else f"{attempts} attempts"
