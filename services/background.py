"""Loop components run inside the service process (``[service] components``).

The demo serves its dashboard beside the whole loop on the embedded backends, which exist only
in-process; a deployment may also run the notifier here. Components step in one worker thread,
as ``meander run`` steps them, and stop with the app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from meander.component import run_until_stopped
from services.context import Service

__all__ = ["Background"]

log = logging.getLogger(__name__)


class Background:
    """The named components on one thread, started and stopped with the app."""

    def __init__(self, service: Service, names: Sequence[str]) -> None:
        self.service = service
        self.names = list(names)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.names:
            return
        from consumers.assembly import build

        components = build(self.names, self.service.runtime, stop=self.stopping)
        self.thread = threading.Thread(
            target=run_until_stopped,
            args=(components, self.stopping),
            name="meander components",
            daemon=True,
        )
        self.thread.start()
        log.info("running %s in the service process", ", ".join(self.names))

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
