"""The HTTP server's connections: a time to send a request in, and a cap on how many are open.

uvicorn closes a connection left idle after a response, but times nothing while a request
arrives: a client that connected and sent nothing, or trickled its headers or its body a byte
at a time, held its connection, and a file descriptor, for good. One client process holding
19,500 such connections used up the service's open-files limit: new connections timed out at
connect, and the Kafka and Redis clients of the components running beside the service could
open nothing either.

:func:`guarded_protocol` gives uvicorn a protocol that closes a connection whose request's
headers are not all in ``header_timeout_seconds`` after the connection was made or the previous
response was sent (with a 408), or whose whole request is not in ``request_timeout_seconds``;
and that answers a connection made while ``max_connections`` are open with a 503 and closes
it. A request received whole is never cut: its response (a live feed) takes as long as it does.

>>> from meander.config.service import ServiceSettings
>>> guarded_protocol(ServiceSettings(max_connections=500)).max_connections
500
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

from meander.config.service import ServiceSettings

__all__ = ["connection_limit", "guarded_protocol"]

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0


def _answer(status: bytes, message: str, *headers: bytes) -> bytes:
    body = b'{"detail":[{"loc":[],"msg":"%s","type":"%s"}]}' % (
        message.encode(),
        b"request_timeout" if status.startswith(b"408") else b"unavailable",
    )
    head = [b"HTTP/1.1 " + status, b"content-type: application/json", b"connection: close"]
    head += [*headers, b"content-length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


BUSY = _answer(
    b"503 Service Unavailable",
    "too many connections are open: try again in a moment",
    b"retry-after: 1",
)
SLOW = _answer(b"408 Request Timeout", "the request's headers did not arrive in time")


def connection_limit(configured: int | None) -> int:
    """``configured``, or three quarters of this process's open-files limit: the rest stays for
    Kafka, Redis and files."""
    if configured is not None:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 100_000 if soft == resource.RLIM_INFINITY else max(1, soft * 3 // 4)


def guarded_protocol(settings: ServiceSettings) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (h11) with ``settings``' deadlines and connection cap."""

    class Guarded(_Guarded):
        header_seconds = min(settings.header_timeout_seconds, settings.request_timeout_seconds)
        request_seconds = settings.request_timeout_seconds
        max_connections = connection_limit(settings.max_connections)

    return Guarded


class _Guarded(H11Protocol):
    header_seconds = 10.0
    request_seconds = 60.0
    max_connections = 10_000
    _warned_at = -WARN_EVERY_SECONDS
    _deadline: asyncio.TimerHandle | None = None
    _began = 0.0
    _heard = False  # whether any of the awaited request has arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > self.max_connections:
            self._warn_full()
            self.transport.write(BUSY)
            self.transport.close()
            return
        self._begin()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._begin()  # the next request's time starts now

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def _begin(self) -> None:
        self._stop()
        self._began, self._heard = self.loop.time(), False
        self._deadline = self.loop.call_later(self.header_seconds, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed, or upgraded to a WebSocket
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # the headers are not all in
            if self._heard:  # a client that sent nothing is not waiting for an answer
                self.transport.write(SLOW)
            self.transport.close()
        elif cycle.more_body:  # the body is not all in
            left = self.request_seconds - (self.loop.time() - self._began)
            if left > 0:
                self._deadline = self.loop.call_later(left, self._expired)
            else:
                self.transport.close()  # the route sees the client leave (499)

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - _Guarded._warned_at >= WARN_EVERY_SECONDS:
            _Guarded._warned_at = now
            log.warning(
                "%d HTTP connections are open, the limit (service.max_connections): new ones "
                "get 503 until some close",
                self.max_connections,
            )
