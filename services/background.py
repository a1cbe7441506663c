"""What the service runs beside its routes: the prediction index, and loop components.

Every service process with streams runs the :class:`~meander.services.index.PredictionIndex` (the
processes share its consumer group, so each prediction is indexed once) and the
:class:`~meander.services.announcer.Announcer` (the decisions no trainer announced).
``[service] components`` adds loop components: the demo serves its dashboard beside the whole
loop on the embedded backends, which exist only in-process; a deployment may also run the
notifier here.
Every component, and the index, steps in a thread of its own (see
:func:`~meander.component.run_in_threads`: a slow step never delays another component), and all
stop with the app.

Each thread connects to the backends itself, retrying until they answer, so the service comes
up (and says on ``/readyz`` what is missing) while Kafka or Redis is still down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import redis
from fastapi import HTTPException

from meander.component import Component, run_in_threads
from meander.exceptions import MeanderError
from meander.runtime import Runtime
from meander.services.context import Service

__all__ = ["Background"]

log = logging.getLogger(__name__)

Build = Callable[[Runtime], list[Component]]


class Background:
    """The prediction index and the named components, each on a thread started and stopped
    with the app."""

    def __init__(self, service: Service, names: Sequence[str]) -> None:
        self.service = service
        self.names = list(names)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.service.settings.streams:
            self._spawn("meander prediction index", _index)
        if self.names:
            self._spawn("meander components", self._components)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)

    def _spawn(self, name: str, build: Build) -> None:
        thread = threading.Thread(target=self._run, args=(build,), name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run(self, build: Build) -> None:
        components = self._built(build)
        if components:
            run_in_threads(components, self.stopping)

    def _built(self, build: Build) -> list[Component] | None:
        """The components, once the backends answer; None when the app stops first."""
        retry = max(1, self.service.settings.service.retry_after_seconds)
        while not self.stopping.is_set():
            try:
                components = build(self.service.runtime)
            except HTTPException as error:  # the runtime could not be opened
                log.warning("background components wait for the backends: %s", error.detail)
            except (MeanderError, redis.RedisError) as error:
                log.warning("background components could not start, retrying: %s", error)
            else:
                names = ", ".join(component.name for component in components)
                log.info("running %s in the service process", names)
                return components
            self.stopping.wait(retry)
        return None

    def _components(self, runtime: Runtime) -> list[Component]:
        from meander.consumers.assembly import build  # the models' libraries, only when needed

        return build(self.names, runtime, stop=self.stopping)


def _index(runtime: Runtime) -> list[Component]:
    from meander.services.announcer import Announcer
    from meander.services.index import PredictionIndex

    return [PredictionIndex(runtime), Announcer(runtime)]
