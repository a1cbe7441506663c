"""Serving the process's registry on its own port, for ``meander run``.

One registry per process, served once: :func:`serve_metrics` started twice on the same port
hands back the server it already started, so ``meander run all`` exposes every component on
one ``/metrics``. The service does not use it: its registry is on its API port.

The same port answers ``/readyz``: 503 with what the process waits for (a backend that does not
answer yet) until its components run, 200 from then on (:func:`report_readiness`).

>>> serve_metrics(0) is None  # 0 disables the metrics port
True
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import make_wsgi_app

from meander.exceptions import ConfigError

__all__ = ["MetricsServer", "report_readiness", "serve_metrics"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_serving: MetricsServer | None = None
# What /readyz reports: each check "ok" or why not, as the service's /readyz does.
_checks: dict[str, str] = {"components": "not started yet"}


def report_readiness(checks: Mapping[str, str]) -> None:
    """Set what ``/readyz`` answers: ready (200) when every check is ``"ok"``, else 503."""
    global _checks
    _checks = dict(checks)


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
            server, thread = _start(port, addr)
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


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes and probes are not worth a log line each


def _start(port: int, addr: str) -> tuple[WSGIServer, threading.Thread]:
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], respond: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/readyz":
            return metrics(environ, respond)  # type: ignore[no-any-return]
        checks = _checks
        ready = all(result == "ok" for result in checks.values())
        body = orjson.dumps({"ready": ready, "checks": checks})
        status = "200 OK" if ready else "503 Service Unavailable"
        respond(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server(addr, port, app, _ThreadingServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="meander metrics", daemon=True)
    thread.start()
    return server, thread
