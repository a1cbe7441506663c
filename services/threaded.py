"""The service under uvicorn in a thread of this process: for the demo, whose embedded backends
exist only in-process, and for tests that need a real server.

>>> from fastapi import FastAPI
>>> server = ThreadedServer(FastAPI(), "127.0.0.1", 0)
>>> server.start(), server.url.startswith("http://127.0.0.1:")
(True, True)
>>> server.stop()
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from meander.services.connections import Protocols

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """``app`` served on ``host:port`` (0 picks a free port) from :meth:`start` to :meth:`stop`,
    over ``protocols`` (uvicorn's ``http`` and ``ws`` protocol classes; its own by default)."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        protocols: Protocols | None = None,
    ) -> None:
        self.host = host
        chosen: dict[str, Any] = dict(protocols or {})
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", **chosen
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="meander service", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket (known once started)."""
        sockets = [s for server in self.server.servers for s in server.sockets]
        port = sockets[0].getsockname()[1] if sockets else self.server.config.port
        return f"http://{self.host}:{port}"

    def start(self, timeout: float = 30.0) -> bool:
        """Start serving; whether uvicorn came up within ``timeout`` seconds."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return bool(self.server.started)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the requests under way, run the app's shutdown, and end the thread."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
