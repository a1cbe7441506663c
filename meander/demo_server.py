"""The service beside the demo: the dashboard and the API over the demo's own backends.

The embedded bus and store live in the demo's process, so the service runs there too, under
uvicorn in a thread, with the notifier (which files alerts and decisions for the dashboard)
in the service's background thread. Anonymous callers may read and publish: it binds to
loopback unless the settings say otherwise.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from meander.config import Settings
from meander.runtime import Runtime

__all__ = ["DemoServer"]


class DemoServer:
    """``with DemoServer(runtime) as url:`` serves until the block ends; ``url`` is None when
    the port is taken (the demo then runs without it and says so)."""

    def __init__(self, runtime: Runtime, port: int | None = None) -> None:
        self.runtime = runtime
        self.host = runtime.settings.api_host
        self.port = port or runtime.settings.api_port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> str | None:
        if _taken(self.host, self.port):
            return None
        from services import create_app

        settings = _demo_settings(self.runtime.settings)
        app = create_app(settings, runtime=self.runtime)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo service", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return f"http://{self.host}:{self.port}" if self.server.started else None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(30)


def _demo_settings(settings: Settings) -> Settings:
    service = settings.service.model_copy(
        update={"components": ["notifier"], "anonymous_scopes": ["read", "publish"]}
    )
    return settings.model_copy(update={"service": service})


def _taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
