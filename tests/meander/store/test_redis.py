"""A Redis that hangs (stopped, a long pause: its connections stay open and nothing answers)
fails each call within the client's timeout, and the client works again once it answers.

On a Redis server of the test's own, paused with SIGSTOP.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from meander.infra.process import free_port
from meander.infra.redis import LocalRedis
from meander.store import redis_store, writable

pytestmark = pytest.mark.integration

TIMEOUT = 1.0


@pytest.fixture
def paused(tmp_path: Path) -> Iterator[tuple[redis.Redis[bytes], LocalRedis]]:
    """A client of a Redis that is then paused; resumed and stopped after the test."""
    server = LocalRedis(port=free_port(), data_dir=tmp_path / "redis")
    server.start(timeout=30)
    assert server.pid is not None
    try:
        client = redis_store(server.url, timeout=TIMEOUT)
        client.set("kept", b"1")
        os.kill(server.pid, signal.SIGSTOP)
        try:
            yield client, server
        finally:
            os.kill(server.pid, signal.SIGCONT)
    finally:
        server.stop()


def _reconnect(client: redis.Redis[bytes]) -> None:
    client.connection_pool.disconnect()  # the next call opens a connection: connect, handshake


CALLS: dict[str, Callable[[redis.Redis[bytes]], object]] = {
    "a read": lambda client: client.get("kept"),
    "a write": writable,
    "a transaction": lambda client: client.pipeline().set("a", 1).incr("b").execute(),
    "a read on a new connection": lambda client: (_reconnect(client), client.get("kept")),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_call_to_a_paused_redis_fails_within_the_timeout(
    paused: tuple[redis.Redis[bytes], LocalRedis], call: Callable[[redis.Redis[bytes]], object]
) -> None:
    client, server = paused
    started = time.monotonic()

    with pytest.raises(redis.TimeoutError):
        call(client)

    # One timeout, not one per retry (each retry of a timed-out call, and of the health
    # check's PING inside it, waited its own: a call took 20 s to minutes, until Redis resumed).
    assert time.monotonic() - started < 2 * TIMEOUT
    assert server.pid is not None
    os.kill(server.pid, signal.SIGCONT)
    assert client.get("kept") == b"1"  # the same client, once Redis answers
