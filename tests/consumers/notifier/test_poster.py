"""One delivery attempt against receivers that misbehave at the socket: it ends within the
notifier's timeout, whatever the receiver does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from meander.consumers.notifier.poster import Poster
from meander.consumers.notifier.webhooks import Webhook
from tests.conftest import HookServer
from tests.consumers.notifier.test_webhooks import drift, notice

TIMEOUT = 0.5
TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + b"X-Slow: " + b"." * 100


@pytest.fixture
def trickling() -> Iterator[str]:
    """A receiver that reads the request, then answers one byte every 0.1 s (10 s in all): no
    single read waits as long as the timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in TRICKLE:
                if stop.wait(0.1):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:  # the notifier gave up: as it should
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    listener.close()


def test_a_receiver_that_trickles_its_answer_is_given_up_on_at_the_timeout(
    trickling: str,
) -> None:
    # urllib's timeout bounds each read: the attempt took the whole 10 s trickle before.
    started = time.monotonic()

    attempt = Poster(TIMEOUT).post(Webhook(trickling), notice(drift()))

    assert time.monotonic() - started < 2.0
    assert attempt.error == f"no answer within {TIMEOUT:g} s"
    assert attempt.retry


def test_a_checked_target_that_resolves_elsewhere_when_connected_is_refused(
    hook_server: Callable[..., HookServer],
) -> None:
    # DNS rebinding: the name resolved to a public address when checked, to loopback when
    # urllib connected a moment later. The address connected to is what counts.
    hook = hook_server()
    public_then = Poster(TIMEOUT, resolve=lambda host, port: ["93.184.215.14"])
    webhook = Webhook(hook.url(), checked=True)

    attempt = public_then.post(webhook, notice(drift()))

    assert attempt.error is not None
    assert attempt.error.startswith("target refused: connected to 127.0.0.1, a loopback address")
    assert not attempt.retry
    assert hook.received == []


def test_a_checked_target_is_reached_through_the_configured_proxy(
    hook_server: Callable[..., HookServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy (here on loopback) connects to the target: the address check is on the name.
    proxy = hook_server()
    monkeypatch.setenv("http_proxy", proxy.url(""))
    public = Poster(TIMEOUT, resolve=lambda host, port: ["93.184.215.14"])

    attempt = public.post(Webhook("http://hooks.example/in", checked=True), notice(drift()))

    assert attempt == (None, 200, False)
    assert [request.path for request in proxy.received] == ["http://hooks.example/in"]
