"""Serving the process's registry on its own port, for ``meander run``.

One registry per process, served once: :func:`serve_metrics` started twice on the same port
hands back the server it already started, so ``meander run all`` exposes every component on
one ``/metrics``. The service does not use it: its registry is on its API port.

>>> serve_metrics(0) is None  # 0 disables the metrics port
True
"""

from __future__ import annotations

import errno
import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from meander.exceptions import ConfigError

__all__ = ["MetricsServer", "serve_metrics"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_serving: MetricsServer | None = None


@dataclass
class MetricsServer:
    """The HTTP server of the registry, on a daemon thread."""

    port: int
    server: WSGIServer
    thread: threading.Thread

    def close(self) -> None:
        """Stop serving; :func:`serve_metrics` may start again afterwards."""
        global _serving
        with _lock:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5.0)
            if _serving is self:
                _serving = None


def serve_metrics(port: int, addr: str = "0.0.0.0") -> MetricsServer | None:
    """Serve the default registry on ``http://addr:port/metrics``; None when ``port`` is 0.

    Raises ConfigError naming the ``metrics_port`` setting when the port cannot be had.
    """
    global _serving
    if port == 0:
        return None
    with _lock:
        if _serving is not None:
            if _serving.port != port:
                raise ConfigError(
                    f"metrics are already served on port {_serving.port} in this process; "
                    f"one process serves one metrics_port, so {port} cannot be added"
                )
            return _serving
        try:
            server, thread = start_http_server(port, addr=addr)
        except OSError as error:
            raise ConfigError(_refused(port, addr, error)) from None
        _serving = MetricsServer(port, server, thread)
    log.info("metrics served on http://%s:%d/metrics", addr, port)
    return _serving


def _refused(port: int, addr: str, error: OSError) -> str:
    fix = (
        "set metrics_port (MEANDER_METRICS_PORT) to a free port for each process on this "
        "host, or to 0 to serve no metrics"
    )
    if error.errno == errno.EADDRINUSE:
        return f"metrics_port {port} is already in use on {addr}: {fix}"
    return f"metrics_port {port} cannot be served on {addr} ({error.strerror or error}): {fix}"
