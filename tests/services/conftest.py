"""Fixtures for the service: a real uvicorn server on a free loopback port, built per test.

``serve(settings)`` starts ``create_app(settings)`` under uvicorn in a thread of the test process
and returns its base URL; the server stops at the end of the test. Pass ``runtime`` to share
backends the test already opened (the embedded ones exist only in-process).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn

from meander.config import Settings
from meander.runtime import Runtime
from services import create_app

Serve = Callable[..., str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RunningServer:
    """uvicorn serving ``create_app(settings, runtime=runtime)`` in a thread."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(settings, runtime=runtime),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn:{port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a real uvicorn server for ``settings``; returns ``http://127.0.0.1:PORT``."""
    servers: list[RunningServer] = []

    def start(settings: Settings, runtime: Runtime | None = None) -> str:
        servers.append(RunningServer(settings, runtime))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()
