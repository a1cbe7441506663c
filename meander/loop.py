"""The closed loop of one stream, driven step by step in one thread.

The backtest, the demo and the benchmarks feed a stream through the very components that run
in production (predictor, learner, trainer, monitor), on whatever bus and store the runtime
holds. :meth:`Loop.feed` publishes a chunk of events, lets the predictor score them, then
publishes the labels that fell due and lets the rest of the loop react, so the order of
events, predictions and labels is the one a live deployment would see with that label delay.
"""

from __future__ import annotations

from collections.abc import Sequence

from meander.bus import Record
from meander.component import Component, drain
from meander.config import StreamConfig
from meander.runtime import Runtime

__all__ = ["Loop"]


class Loop:
    """Predictor, learner, trainer and (optionally) monitor of one stream, stepped in turn."""

    def __init__(self, runtime: Runtime, stream: StreamConfig, *, monitor: bool = True) -> None:
        from consumers.learner import Learner
        from consumers.predictor import Predictor
        from consumers.trainer import Trainer

        self.runtime, self.stream = runtime, stream
        self.learner = Learner(runtime, stream)
        self.learner.step()  # takes the lease and registers the first champion
        self.predictor = Predictor(runtime, stream)
        self.trainer = Trainer(runtime, stream)
        self.monitor: Component | None = None
        if monitor:
            from consumers.monitor import Monitor

            self.monitor = Monitor(runtime, stream)
        self.after_labels: list[Component] = [self.learner, self.trainer]
        if self.monitor is not None:
            self.after_labels.append(self.monitor)

    def feed(self, events: Sequence[Record], labels: Sequence[Record]) -> None:
        """Publish ``events``, score them, publish ``labels``, and let the loop react."""
        if events:
            self.runtime.bus.publish(events)
            drain([self.predictor])
        if labels:
            self.runtime.bus.publish(labels)
        drain(self.after_labels)

    def close(self) -> None:
        for component in (self.predictor, self.learner, self.trainer, self.monitor):
            if component is not None:
                component.close()
