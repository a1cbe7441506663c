"""A broker counts as reachable when it answers, not when its port accepts a connection: a
paused or hung broker (SIGSTOP, a long GC pause) has its connections accepted by the kernel and
answers nothing, which a listening socket that never reads stands for here."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from meander.bus.reach import reachable

pytestmark = pytest.mark.integration


@pytest.fixture
def silent() -> Iterator[str]:
    """host:port of a socket that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def test_a_broker_that_answers_is_reachable(kafka_bootstrap: str) -> None:
    assert reachable(kafka_bootstrap, 5.0)


def test_a_port_that_accepts_and_never_answers_is_not_a_broker(silent: str) -> None:
    started = time.monotonic()

    assert not reachable(silent, 0.5)
    assert time.monotonic() - started < 1.5


def test_any_address_of_the_bootstrap_that_answers_will_do(
    silent: str, kafka_bootstrap: str
) -> None:
    assert reachable(f"{silent},{kafka_bootstrap}", 1.0)
