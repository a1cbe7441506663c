"""Connections to the real server (uvicorn): deadlines to send a request in, a cap on how many.

Before, a client that connected and sent nothing, or trickled its headers or body, held its
connection for good: enough of them used up the process's open-files limit (19,500 from one
client process), and then nobody could connect.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from websockets.sync.client import connect

from meander import topics
from meander.config import Settings, StreamConfig
from meander.events import encode
from meander.services import connections
from tests.conftest import MakeRuntime
from tests.services.conftest import RunningServer, Serve
from tests.services.test_index import answer

WAIT = 5.0  # only a server that never cuts the connection makes a test wait this long


def settings(**service: Any) -> Settings:
    stream = StreamConfig(name="s", task="binary", features={"x": "numeric"})
    limits = {"header_timeout_seconds": 0.5, "request_timeout_seconds": 1.0, **service}
    return Settings(streams=[stream], service={"anonymous_scopes": ["publish", "read"], **limits})


Dial = Callable[[str], socket.socket]


@pytest.fixture
def dial() -> Iterator[Dial]:
    """Open raw connections to a server's URL; closed at the end of the test."""
    opened: list[socket.socket] = []

    def open_one(url: str) -> socket.socket:
        host, port = url.removeprefix("http://").split(":")
        opened.append(socket.create_connection((host, int(port)), timeout=WAIT))
        return opened[-1]

    yield open_one
    for client in opened:
        client.close()


def answer_of(client: socket.socket) -> bytes:
    """One whole response: its head, then as many bytes as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += client.recv(4096)
    return head + b"\r\n\r\n" + body


def trickle(client: socket.socket, byte: bytes) -> tuple[bytes, float]:
    """Send ``byte`` every 0.1 s until the server answers or closes: (its answer, seconds)."""
    began = time.monotonic()
    client.settimeout(0.1)
    while time.monotonic() - began < WAIT:
        try:
            client.sendall(byte)
            return client.recv(4096), time.monotonic() - began
        except TimeoutError:
            continue
        except OSError:  # reset: it closed
            return b"", time.monotonic() - began
    raise AssertionError(f"still open after {WAIT} s")


def test_a_client_trickling_its_headers_gets_a_408_and_is_closed(serve: Serve, dial: Dial) -> None:
    client = dial(serve(settings()))
    client.sendall(b"POST /v1/streams/s/events HTTP/1.1\r\nHost: test\r\n")
    answer, took = trickle(client, b"x")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"the request's headers did not arrive in time" in answer
    assert took < 2.0


def test_a_client_that_sends_nothing_is_closed(serve: Serve, dial: Dial) -> None:
    client = dial(serve(settings()))
    client.settimeout(WAIT)
    began = time.monotonic()
    assert client.recv(4096) == b""  # nothing to answer: it asked nothing
    assert time.monotonic() - began < 2.0


def test_a_client_trickling_its_body_is_closed(serve: Serve, dial: Dial) -> None:
    client = dial(serve(settings(request_timeout_seconds=1.5)))
    client.sendall(
        b"POST /v1/streams/s/events HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n["
    )
    answer, took = trickle(client, b" ")
    assert answer == b""
    assert 0.7 < took < 3.0  # the request's deadline, not the headers'


def test_requests_in_time_are_answered_on_a_kept_connection(serve: Serve, dial: Dial) -> None:
    client = dial(serve(settings(header_timeout_seconds=2.0, request_timeout_seconds=4.0)))
    body = b'{"features": {"x": 1.5}}'
    for _ in range(2):
        time.sleep(0.1)
        client.sendall(b"POST /v1/streams/s/events HTTP/1.1\r\nHost: test\r\n")
        time.sleep(0.1)
        client.sendall(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(2.3)  # past the headers' deadline, within the request's
        client.sendall(body)
        assert answer_of(client).startswith(b"HTTP/1.1 202 ")


def test_live_feeds_outlast_the_deadlines(serve: Serve, dial: Dial) -> None:
    url = serve(settings())
    feed = dial(url)
    feed.sendall(b"GET /v1/alerts/live HTTP/1.1\r\nHost: test\r\n\r\n")
    assert feed.recv(4096).startswith(b"HTTP/1.1 200 ")
    with connect(url.replace("http", "ws", 1) + "/v1/streams/s/predictions/ws") as websocket:
        time.sleep(1.5)  # past both deadlines
        assert websocket.ping().wait(WAIT)
    feed.settimeout(0.5)
    with contextlib.suppress(TimeoutError):  # open, waiting for an alert
        assert feed.recv(4096) != b"", "the live feed was closed"


def test_a_connection_past_the_cap_gets_a_503(serve: Serve, dial: Dial) -> None:
    url = serve(
        settings(header_timeout_seconds=30.0, request_timeout_seconds=30.0, max_connections=3)
    )
    held = [dial(url) for _ in range(3)]
    time.sleep(0.2)  # accepted
    one_more = dial(url)
    one_more.settimeout(WAIT)
    answer = one_more.recv(4096)
    assert answer.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in answer
    for client in held:
        client.close()  # closing twice is allowed
    time.sleep(0.2)
    assert httpx.get(f"{url}/healthz", timeout=WAIT).status_code == 200


STALLED = {
    "ws": b"GET /v1/streams/fraud/predictions/ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    "sse": b"GET /v1/streams/fraud/predictions/live HTTP/1.1\r\nHost: test\r\n\r\n",
}


@pytest.mark.parametrize("feed", sorted(STALLED))
def test_a_server_stopping_cuts_a_feed_whose_client_reads_nothing(
    feed: str, make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close waited to send what the client never read: uvicorn waited for the connection
    to close, and ``meander serve`` never ended on SIGTERM."""
    monkeypatch.setattr(connections, "CLOSE_GRACE_SECONDS", 0.2)
    stream = StreamConfig(name="fraud", task="binary", features={"amount": "numeric"})
    runtime = make_runtime(stream, service={"anonymous_scopes": ["read"]})
    server = RunningServer(runtime.settings, runtime)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect((host, int(port)))
        client.sendall(STALLED[feed])
        assert client.recv(12) in (b"HTTP/1.1 101", b"HTTP/1.1 200")  # then never reads again
        topic = topics.predictions("fraud")
        for batch in range(20):  # 10 MB: more than the socket's buffers hold
            answers = [answer(f"e{batch}-{n}-" + "x" * 500) for n in range(1000)]
            runtime.bus.publish([encode(topic, a, source="/test") for a in answers])
        time.sleep(1.0)  # the feed sends until the buffers are full
        began = time.monotonic()
        server.stop(timeout=WAIT)
        assert not server.thread.is_alive(), f"the server still waits after {WAIT} s"
        assert time.monotonic() - began < 3.0
