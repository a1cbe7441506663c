"""The closed loop of one stream, driven step by step in one thread.

The backtest, the demo and the benchmarks feed a stream through the very components that run
in production (predictor, learner, trainer, monitor), on whatever bus and store the runtime
holds. :meth:`Loop.feed` publishes a chunk of events, lets the predictor score them, then
publishes the labels that fell due and lets the rest of the loop react, so the order of
events, predictions and labels is the one a live deployment would see with that label delay.
On Kafka, where a fetch takes a moment, it waits (up to ``patience`` seconds) until the
predictor has scored every event and the learner has read every label it published.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from meander.bus import Record
from meander.component import YOUNG_COLLECTION_EVERY, Component, drain, freeze_heap
from meander.config import StreamConfig
from meander.runtime import Runtime

__all__ = ["Loop", "TickClock"]

RESERVE_MS = 86_400_000  # how far behind the wall clock a TickClock starts


class Loop:
    """Predictor, learner, trainer and (optionally) monitor of one stream, stepped in turn."""

    def __init__(
        self,
        runtime: Runtime,
        stream: StreamConfig,
        *,
        monitor: bool = True,
        patience: float = 30.0,
    ) -> None:
        from meander.consumers.learner.learner import Learner
        from meander.consumers.predictor.predictor import Predictor
        from meander.consumers.trainer.trainer import Trainer

        stream = _by_count(stream)
        self.runtime, self.stream, self.patience = runtime, stream, patience
        self.learner = Learner(runtime, stream)
        self.learner.step()  # takes the lease and registers the first champion
        self.predictor = Predictor(runtime, stream)
        self.trainer = Trainer(runtime, stream)
        self.monitor: Component | None = None
        if monitor:
            from meander.consumers.monitor.monitor import Monitor

            self.monitor = Monitor(runtime, stream)
        self.after_labels: list[Component] = [self.learner, self.trainer]
        if self.monitor is not None:
            self.after_labels.append(self.monitor)
        self.events = self.labels = 0
        self._nudge = 0.05 if runtime.settings.uses_kafka else 0.0
        self._thresholds: tuple[int, ...] | None = None  # the collector's, before the first feed

    def feed(self, events: Sequence[Record], labels: Sequence[Record]) -> None:
        """Publish ``events``, score them, publish ``labels``, and let the loop react."""
        if self._thresholds is None:
            # As a component process does after its first busy round: the libraries, clients
            # and components alive now are left out of later full collections, each of which
            # went over them all (some 130,000 objects: 24 us an event of a 5,000-event loop
            # racing nothing, 57 us of one racing four challengers); and the youngest
            # generation is collected every YOUNG_COLLECTION_EVERY allocations, not 700.
            self._thresholds = gc.get_threshold()
            freeze_heap()
            gc.set_threshold(YOUNG_COLLECTION_EVERY, *self._thresholds[1:])
        if events:
            self.runtime.bus.publish(events)
            self.events += len(events)
            self._until(self.predictor, lambda: self.predictor.handled >= self.events)
        if labels:
            self.runtime.bus.publish(labels)
            self.labels += len(labels)
        self._until(self.learner, lambda: self.learner.handled_labels >= self.labels)
        for component in self.after_labels[1:]:
            # A Kafka group member joins its group only while polling with a timeout: stepped
            # with none, the trainer would never get its partitions.
            component.step(self._nudge)
        drain(self.after_labels)

    def close(self) -> None:
        for component in (self.predictor, self.learner, self.trainer, self.monitor):
            if component is not None:
                component.close()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)

    def _until(self, component: Component, done: Callable[[], bool]) -> None:
        # Step only while something is still due: one more step to find nothing left would
        # cost a registry round trip and a poll per chunk, for nothing.
        deadline = time.monotonic() + self.patience
        timeout = 0.0
        while not done() and time.monotonic() < deadline:
            component.step(timeout)
            timeout = 0.1 if self._nudge else 0.0


def _by_count(stream: StreamConfig) -> StreamConfig:
    """``stream`` whose learner shares its models after so many labels, never after so many
    seconds: a loop's time is its records' (:class:`TickClock`), and a bound on the wall clock
    would make what is served depend on how fast the machine ran."""
    learning = stream.learning.model_copy(update={"publish_seconds": None})
    return stream.model_copy(update={"learning": learning})


class TickClock:
    """A run's own time: one millisecond per record published, from a day before the run.

    The learner merges partitions by record time, then partition; with wall-clock times,
    records published in the same millisecond would be learnt in partition order, and two runs
    over one file would learn in different orders. One tick per record makes the order the
    publishing order, the same in every run (backtests, benchmarks, the demo). It starts a day
    back, so that a run publishing faster than a record per millisecond does not run ahead of
    the wall clock, where its times would be refused (:mod:`meander.clock`): a run has room
    for 86 million records.
    """

    def __init__(self) -> None:
        self.now_ms = time.time_ns() // 1_000_000 - RESERVE_MS

    def tick(self) -> datetime:
        self.now_ms += 1
        return datetime.fromtimestamp(self.now_ms / 1000, UTC)

    def stamp(self, records: list[Record]) -> list[Record]:
        stamped = []
        for record in records:
            self.now_ms += 1
            stamped.append(
                Record(
                    record.topic,
                    record.value,
                    record.key,
                    record.headers,
                    record.partition,
                    timestamp_ms=self.now_ms,
                )
            )
        return stamped
