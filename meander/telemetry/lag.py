"""Consumer lag: how far each partition's end is ahead of where a component reads.

Asking a Kafka broker for the end offsets is a round trip, so :class:`LagSampler` asks at most
once every ``every`` seconds, however often it is called; a component calls it once per step.
It follows the consumer's assignment (a group rebalance moves partitions) and removes the
series of partitions it no longer reads, and all of its series on :meth:`LagSampler.close`.

>>> from meander.bus import MemoryBroker, MemoryBus, Record
>>> from prometheus_client import REGISTRY
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"lagdoc.events": 1})
>>> _ = bus.publish([Record("lagdoc.events", b"x")] * 5)
>>> consumer = bus.subscribe(["lagdoc.events"], "doc")
>>> lag = LagSampler("predictor", consumer, every=0.0)
>>> _ = consumer.consume(2, 0.0)
>>> lag.sample()
>>> labels = {"component": "predictor", "topic": "lagdoc.events", "partition": "0"}
>>> REGISTRY.get_sample_value("meander_consumer_lag", labels)
3.0
>>> lag.close()
>>> REGISTRY.get_sample_value("meander_consumer_lag", labels) is None
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import suppress

from prometheus_client import Gauge

from meander.bus import Consumer, TopicPartition
from meander.telemetry.metrics import CONSUMER_LAG

__all__ = ["LagSampler"]

log = logging.getLogger(__name__)

Positions = Callable[[], Mapping[TopicPartition, int]]


class LagSampler:
    """Sets ``meander_consumer_lag`` for one component's consumer, now and then.

    ``positions`` says where the component really is, when that differs from the consumer's
    own position (a reader that buffers ahead); by default it is the consumer's position in
    each assigned partition.
    """

    def __init__(
        self,
        component: str,
        consumer: Consumer,
        *,
        every: float = 5.0,
        positions: Positions | None = None,
    ) -> None:
        self.component, self.consumer, self.every = component, consumer, every
        self.positions = positions or self._assigned_positions
        self._last = float("-inf")
        self._shown: set[TopicPartition] = set()

    def sample(self) -> None:
        """Update the lag if ``every`` seconds passed since the last update."""
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        try:
            positions = dict(self.positions())
            # Known ends, not asked for: a round trip here (75 ms each 5 s in a traced predictor
            # at 1,000 events/s) held up the step, and the events waiting behind it.
            ends = self.consumer.known_end_offsets(sorted(positions)) if positions else {}
        except Exception as error:  # a metric must never fail a step; the next sample retries
            log.debug("%s: consumer lag not sampled: %s", self.component, error)
            return
        for partition, position in positions.items():
            end = ends.get(partition)
            if end is not None:
                self._gauge(partition).set(max(0, end - position))
        for gone in self._shown - set(positions):
            self._remove(gone)
        self._shown = set(positions)

    def close(self) -> None:
        """Remove every series this sampler set: the component no longer reads them."""
        for partition in self._shown:
            self._remove(partition)
        self._shown = set()

    def _assigned_positions(self) -> dict[TopicPartition, int]:
        return {p: self.consumer.position(p) for p in self.consumer.assignment()}

    def _gauge(self, partition: TopicPartition) -> Gauge:
        return CONSUMER_LAG.labels(self.component, partition.topic, str(partition.partition))

    def _remove(self, partition: TopicPartition) -> None:
        with suppress(KeyError):  # never set: its end offset was not known yet
            CONSUMER_LAG.remove(self.component, partition.topic, str(partition.partition))
