"""One attempt at delivering a notice to a webhook, and whether another may help.

An attempt ends within the notifier's ``timeout_seconds``, whatever the receiver does.
urllib's timeout bounds each read and write only: a receiver that answers (or reads the body)
a byte at a time would hold the attempt, and every notice queued behind it, for as long as it
liked. So a timer shuts the attempt's socket down once its time is up, which ends a blocked
read or write at once.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from meander.consumers.notifier.targets import Resolver, UnsafeTarget, check_peer, check_target
from meander.consumers.notifier.webhooks import Notice, Webhook

__all__ = ["Attempt", "Poster"]


class Attempt(NamedTuple):
    """How one POST went: ``error`` is None when it was taken (2xx)."""

    error: str | None
    http_status: int | None
    retry: bool


class Poster:
    """POSTs notices to webhooks, one attempt at a time, saying whether another may help.

    Connection errors, timeouts, 5xx and 429 are worth retrying; other 4xx, redirects and
    refused targets are not.
    """

    def __init__(self, timeout: float, *, resolve: Resolver | None = None) -> None:
        self.timeout = timeout
        self.resolve = resolve

    def post(self, webhook: Webhook, notice: Notice) -> Attempt:
        """One attempt at delivering ``notice`` to ``webhook``, within ``timeout`` seconds."""
        try:
            if webhook.checked:  # at each attempt: what the host resolves to may have changed
                check_target(webhook.url, resolve=self.resolve)
            target = urlsplit(webhook.url).netloc if webhook.checked else None
            with _Deadline(self.timeout, checked=target) as deadline:
                attempt = self._send(deadline.opener(), webhook, notice)
        except UnsafeTarget as error:
            return Attempt(f"target refused: {error}", None, False)
        if deadline.passed.is_set() and attempt.error is not None:
            return Attempt(f"no answer within {self.timeout:g} s", None, True)
        return attempt

    def _send(
        self, opener: urllib.request.OpenerDirector, webhook: Webhook, notice: Notice
    ) -> Attempt:
        try:
            with opener.open(webhook.request(notice), timeout=self.timeout) as response:
                return Attempt(None, response.status, False)
        except urllib.error.HTTPError as error:
            error.close()
            if 300 <= error.code < 400:
                redirect = f"HTTP {error.code} redirect (not followed: configure the final URL)"
                return Attempt(redirect, error.code, False)
            return Attempt(f"HTTP {error.code}", error.code, error.code >= 500 or error.code == 429)
        except urllib.error.URLError as error:
            return Attempt(f"connection error: {error.reason}", None, True)
        except TimeoutError:
            return Attempt(f"no answer within {self.timeout:g} s", None, True)
        except (OSError, http.client.HTTPException) as error:
            return Attempt(f"connection error: {type(error).__name__}: {error}", None, True)


class _Deadline:
    """Shuts down the sockets of one attempt once ``seconds`` have passed (``passed`` says so);
    a direct connection to ``checked`` (host[:port]) is refused as it opens unless its address
    is public. Through a proxy (``http_proxy``...) the proxy connects, and the check of the
    name before the attempt is what there is."""

    def __init__(self, seconds: float, *, checked: str | None = None) -> None:
        self.checked = checked
        self.passed = threading.Event()
        self._connections: list[http.client.HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def opener(self) -> urllib.request.OpenerDirector:
        """An opener whose connections this deadline watches, and which follows no redirect."""
        return urllib.request.build_opener(_RefuseRedirects, _Plain(self), _Secure(self))

    def watched(self, kind: type[http.client.HTTPConnection]) -> Any:
        """A factory of ``kind`` connections that this deadline can cut."""

        def connect(host: str, **options: Any) -> http.client.HTTPConnection:
            connection = kind(host, **options)
            if host == self.checked:  # before a byte is sent, before a TLS handshake
                create = connection._create_connection  # type: ignore[attr-defined]
                connection._create_connection = _public_only(create)  # type: ignore[attr-defined]
            self._connections.append(connection)
            return connection

        return connect

    def _cut(self) -> None:
        self.passed.set()
        for connection in list(self._connections):
            if connection.sock is not None:
                with contextlib.suppress(OSError):  # closed already
                    connection.sock.shutdown(socket.SHUT_RDWR)


def _public_only(create: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
    def create_public(*args: Any, **kwargs: Any) -> socket.socket:
        made = create(*args, **kwargs)
        try:
            check_peer(str(made.getpeername()[0]))
        except UnsafeTarget:
            made.close()
            raise
        return made

    return create_public


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without the body: fail loudly instead.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class _Plain(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.deadline.watched(http.client.HTTPConnection), req)


class _Secure(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        kind = self.deadline.watched(http.client.HTTPSConnection)
        return self.do_open(kind, req, context=self._context)  # type: ignore[attr-defined]
