"""Fixtures for the service: a real uvicorn server on a free loopback port, built per test.

``serve(settings)`` starts ``create_app(settings)`` under uvicorn in a thread of the test process
and returns its base URL; the server stops at the end of the test. Pass ``runtime`` to share
backends the test already opened (the embedded ones exist only in-process).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from meander.config import Settings
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.connections import protocols
from meander.services.threaded import ThreadedServer

Serve = Callable[..., str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RunningServer(ThreadedServer):
    """uvicorn serving ``create_app(settings, runtime=runtime)`` on a free loopback port, over
    the protocol ``meander serve`` runs."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        app = create_app(settings, runtime=runtime)
        super().__init__(app, "127.0.0.1", free_port(), protocols(settings.service))
        if not self.start():
            raise RuntimeError(f"uvicorn did not start for {self.url}")


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


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The one problem a refused answer names, checked to be in the service's one shape."""
    body = response.json()
    assert set(body) == {"detail"}, body
    [problem] = body["detail"]
    assert set(problem) == {"loc", "msg", "type"}, problem
    return dict(problem)


def documented() -> set[tuple[int, str]]:
    """The (status, type) pairs of the table in docs/service.md's "Errors and limits"."""
    text = (Path(__file__).parents[2] / "docs" / "service.md").read_text()
    section = text.split("## Errors and limits", 1)[1].split("\n## ", 1)[0]
    return {(int(s), kind) for s, kind in re.findall(r"^\| (\d{3}) \| `(\w+)` \|", section, re.M)}
