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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


# --- a real webhook receiver on loopback ------------------------------------------------

RECEIVER_BOUND = 60.0  # seconds a receiver waits for deliveries before the test fails


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint answering ``statuses`` in turn, then the last one again."""

    statuses: list[int]
    port: int = 0
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, RECEIVER_BOUND)
            return list(self.received)

    def answer(self, request: Received) -> int:
        with self.arrived:
            self.received.append(request)
            self.arrived.notify_all()
            return self.statuses[min(len(self.received), len(self.statuses)) - 1]


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(*statuses: int) -> Receiver:
        hook = Receiver(list(statuses) or [200])

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.send_response(hook.answer(Received(self.path, headers, body)))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        hook.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return hook

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()
