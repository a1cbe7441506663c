"""Which components ``meander run NAME`` builds, one per configured stream where it applies.

>>> from meander.config import Settings
>>> from meander.runtime import Runtime
>>> from meander.producers.synthetic import synthetic
>>> settings = Settings(streams=[synthetic("sea").stream_config("sea")])
>>> with Runtime.open(settings) as runtime:
...     [component.name for component in build(["trainer", "notifier"], runtime)]
['trainer', 'notifier']
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from meander.component import Component, collection_paused, run_in_threads, stop_on_signals
from meander.config import Settings
from meander.logs import configure_logging
from meander.runtime import Runtime, open_when_up
from meander.telemetry import serve_metrics

__all__ = ["build", "run"]

log = logging.getLogger(__name__)

# A predictor run on its own asks the registry for model changes, and commits its offsets, at
# most this often (seconds) rather than on every step: under load its steps are short.
REFRESH_EVERY = 0.1
COMMIT_EVERY = 0.1

# The learner first: it registers a stream's first champion, which the predictor waits for.
ORDER = ("learner", "predictor", "trainer", "monitor", "notifier", "producer")


def build(
    names: Sequence[str], runtime: Runtime, *, stop: threading.Event | None = None
) -> list[Component]:
    """The components called ``names``, in an order that lets them start in one process.

    Each component's module is imported only when it is asked for: a process that runs one
    component starts without the others' imports (scipy's statistics, say), which is most of
    a restart's time."""
    streams = runtime.settings.streams
    built: list[Component] = []
    for name in sorted(names, key=ORDER.index):
        if name == "learner":
            from meander.consumers.learner.learner import Learner

            built += [Learner(runtime, stream) for stream in streams]
        elif name == "predictor":
            from meander.consumers.predictor.predictor import Predictor

            built += [
                Predictor(runtime, stream, refresh_every=REFRESH_EVERY, commit_every=COMMIT_EVERY)
                for stream in streams
            ]
        elif name == "trainer":
            from meander.consumers.trainer.trainer import Trainer

            built += [Trainer(runtime, stream) for stream in streams]
        elif name == "monitor":
            from meander.consumers.monitor.monitor import Monitor

            built += [Monitor(runtime, stream) for stream in streams]
        elif name == "notifier":
            from meander.consumers.notifier.notifier import Notifier

            built.append(Notifier(runtime))
        elif name == "producer":
            from meander.producers.runner import Producer

            # Alone, the producer's process ends with its source; beside others it just idles.
            alone = stop if len(names) == 1 else None
            built.append(Producer(runtime, on_finished=None if alone is None else alone.set))
    return built


def run(names: Sequence[str], settings: Settings) -> None:
    """Run the named components in this process until SIGTERM or SIGINT, logging as the
    settings say and serving their metrics on ``metrics_port`` (one registry, however many
    components); ConfigError when that port cannot be had. Each component steps in a thread of
    its own (see :func:`~meander.component.run_in_threads`)."""
    configure_logging(settings, component=names[0] if len(names) == 1 else "all")
    serve_metrics(settings.metrics_port)  # before the backends: `up` says the process runs
    stop = stop_on_signals()
    # Started before Kafka or Redis answers (a deployment's start order, an outage), it waits.
    with collection_paused():  # building is mostly imports: objects kept for good
        opened = open_when_up(settings, stop, lambda runtime: build(names, runtime, stop=stop))
    if opened is None:
        return  # stopped while waiting
    runtime, components = opened
    # What comes before is mostly imports (CPU); what comes after, until each component says
    # it works, is joins, the lease and first fetches (waits).
    log.info(
        "%s: built (%.2f CPU-s since the process started)",
        ", ".join(names),
        time.process_time(),
        extra={"built": True, "cpu_seconds": round(time.process_time(), 3)},
    )
    with runtime:
        run_in_threads(components, stop)
