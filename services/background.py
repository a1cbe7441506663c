"""What the service runs beside its routes: the prediction index, and loop components.

Every service process with streams runs the :class:`~services.index.PredictionIndex` (the
processes share its consumer group, so each prediction is indexed once). ``[service]
components`` adds loop components: the demo serves its dashboard beside the whole loop on the
embedded backends, which exist only in-process; a deployment may also run the notifier here.
They all step in one worker thread, as ``meander run`` steps them, and stop with the app.

The thread connects to the backends itself, retrying until they answer, so the service comes
up (and says on ``/readyz`` what is missing) while Kafka or Redis is still down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import redis
from fastapi import HTTPException

from meander.component import Component, run_until_stopped
from meander.exceptions import MeanderError
from meander.runtime import Runtime
from services.context import Service

__all__ = ["Background"]

log = logging.getLogger(__name__)


class Background:
    """The prediction index and the named components on one thread, started and stopped with
    the app."""

    def __init__(self, service: Service, names: Sequence[str]) -> None:
        self.service = service
        self.names = list(names)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.names and not self.service.settings.streams:
            return
        self.thread = threading.Thread(target=self._run, name="meander components", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        components = self._build()
        if components is not None:
            run_until_stopped(components, self.stopping)

    def _build(self) -> list[Component] | None:
        """The components, once the backends answer; None when the app stops first."""
        from services.index import PredictionIndex

        retry = max(1, self.service.settings.service.retry_after_seconds)
        while not self.stopping.is_set():
            try:
                runtime = self.service.runtime
            except HTTPException as error:
                log.warning("background components wait for the backends: %s", error.detail)
                self.stopping.wait(retry)
                continue
            try:
                components = self._components(runtime)
                if runtime.settings.streams:
                    components.append(PredictionIndex(runtime))
            except (MeanderError, redis.RedisError) as error:
                log.warning("background components could not start, retrying: %s", error)
                self.stopping.wait(retry)
                continue
            names = [component.name for component in components]
            log.info("running %s in the service process", ", ".join(names))
            return components
        return None

    def _components(self, runtime: Runtime) -> list[Component]:
        if not self.names:
            return []
        from consumers.assembly import build  # the models' libraries, only when needed

        return build(self.names, runtime, stop=self.stopping)
