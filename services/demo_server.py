"""The service beside the demo: the dashboard and the API over the demo's own backends.

The embedded bus and store live in the demo's process, so the service runs there too, under
uvicorn in a thread, with the notifier (which files alerts and decisions for the dashboard)
in the service's background thread. Anonymous callers may read and publish: it binds to
loopback unless the settings say otherwise.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import TYPE_CHECKING

from meander.config import Settings
from meander.runtime import Runtime

if TYPE_CHECKING:  # the service is imported only when the demo serves it
    from meander.services.threaded import ThreadedServer

__all__ = ["DemoServer"]


class DemoServer:
    """``with DemoServer(runtime) as url:`` serves until the block ends; ``url`` is None when
    the port is taken (the demo then runs without it and says so)."""

    def __init__(self, runtime: Runtime, port: int | None = None) -> None:
        self.runtime = runtime
        self.host = runtime.settings.api_host
        self.port = port or runtime.settings.api_port
        self.server: ThreadedServer | None = None

    def __enter__(self) -> str | None:
        if _taken(self.host, self.port):
            return None
        from meander.services import create_app
        from meander.services.connections import protocols
        from meander.services.threaded import ThreadedServer

        settings = _demo_settings(self.runtime.settings)
        app = create_app(settings, runtime=self.runtime)
        self.server = ThreadedServer(app, self.host, self.port, protocols(settings.service))
        return self.server.url if self.server.start() else None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.server is not None:
            self.server.stop()


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
