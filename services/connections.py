"""The HTTP server's connections: a time to send a request in, and a cap on how many are open.

uvicorn closes a connection left idle after a response, but times nothing while a request
arrives: a client that connected and sent nothing, or trickled its headers or its body a byte
at a time, held its connection, and a file descriptor, for good. One client process holding
19,500 such connections used up the service's open-files limit: new connections timed out at
connect, and the Kafka and Redis clients of the components running beside the service could
open nothing either.

:func:`protocols` gives uvicorn an HTTP protocol that closes a connection whose request's
headers are not all in ``header_timeout_seconds`` after the connection was made or the previous
response was sent (with a 408), or whose whole request is not in ``request_timeout_seconds``;
and that answers a connection made while ``max_connections`` are open with a 503 and closes
it. A request received whole is never cut: its response (a live feed) takes as long as it does.

A connection closed while its peer reads nothing is aborted: asyncio's ``close()`` waits to send
what is buffered first, which a stalled peer never lets it do, so the connection stayed open for
good. A WebSocket client that stopped reading was found by uvicorn's ping (no pong in 20 s) and
closed, yet held its socket and its feed's Kafka reader, and ``meander serve`` never finished
on SIGTERM ("Waiting for connections to close"). Both protocols of :func:`protocols` check
every ``CLOSE_GRACE_SECONDS`` whether a closing connection sent anything since, and abort it if
not.

>>> from meander.config.service import ServiceSettings
>>> protocols(ServiceSettings(max_connections=500))["http"].max_connections
500
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import struct
import time
from typing import TypedDict, cast

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from meander.config.service import ServiceSettings

__all__ = ["Protocols", "connection_limit", "protocols"]

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0
CLOSE_GRACE_SECONDS = 10.0


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


class Protocols(TypedDict):
    """uvicorn's options naming its protocol classes."""

    http: type[asyncio.Protocol]
    ws: type[asyncio.Protocol]


def protocols(settings: ServiceSettings) -> Protocols:
    """uvicorn's ``http`` (h11) and ``ws`` (websockets) protocols, with ``settings``' deadlines
    and connection cap, aborting what closes while its peer reads nothing."""

    class Guarded(_Guarded):
        header_seconds = min(settings.header_timeout_seconds, settings.request_timeout_seconds)
        request_seconds = settings.request_timeout_seconds
        max_connections = connection_limit(settings.max_connections)

    return Protocols(http=Guarded, ws=_GuardedSocket)


class _Reaping:
    """Aborts the transport once it has been closing, or its server stopping, for
    ``CLOSE_GRACE_SECONDS`` with nothing of its buffer sent (a peer reading slowly still gets
    all of it)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _reaper: asyncio.TimerHandle | None = None
    _unsent: int | None = None  # the buffer at the last check, while closing or stopping
    _stopping = False

    def _start_reaping(self) -> None:
        self._reaper = self.loop.call_later(CLOSE_GRACE_SECONDS, self._reap)

    def _stop_reaping(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None

    def _reap(self) -> None:
        transport = self.transport
        if transport.get_protocol() is not cast(object, self):
            return  # upgraded: the WebSocket's protocol watches it now
        ending = transport.is_closing() or self._stopping
        unsent = transport.get_write_buffer_size() if ending else None
        if unsent and unsent == self._unsent:
            _reset(transport)
            return
        self._unsent = unsent
        self._start_reaping()


def _reset(transport: asyncio.Transport) -> None:
    """Abort with a reset: a plain close leaves the kernel holding what the peer never read,
    and the socket in FIN-WAIT-1, as long as the peer keeps its window shut."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _GuardedSocket(_Reaping, WebSocketsSansIOProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_reaping()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_reaping()
        super().connection_lost(exc)


class _Guarded(_Reaping, H11Protocol):
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
        else:
            self._begin()
        self._start_reaping()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._begin()  # the next request's time starts now

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        self._stop_reaping()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # A response under way is let finish (uvicorn waits for it), unless its client reads
        # nothing of it: a live feed's stalled client would keep the server from ever ending.
        self._stopping = True
        super().shutdown()

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
