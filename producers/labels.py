"""Labels as they arrive in practice: late, at an uneven pace, and sometimes never.

A :class:`Publisher` turns samples into the records a producer publishes: each sample's feature
event at once, and its label as feedback once enough later events have gone by. A backtest
publishes the events of a chunk, lets the predictor score them, and only then publishes the
feedback that became due, which is why :meth:`Publisher.push` returns the two lists apart.

>>> from meander.producers.sample import Sample
>>> publisher = Publisher("fraud", label_delay=2)
>>> samples = [Sample(i, f"e{i}", {"amount": float(i)}, i % 2) for i in range(4)]
>>> events, feedback = publisher.push(samples)
>>> len(events), [record.key for record in feedback]
(4, [b'e0', b'e1'])
>>> [record.key for record in publisher.flush()]
[b'e2', b'e3']
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from typing import Any

from meander import topics
from meander.bus import Record
from meander.events import FeatureEvent, Feedback, encode
from meander.producers.exceptions import SourceError
from meander.producers.sample import Sample
from meander.producers.seeds import derive_seed

__all__ = ["LabelDelay", "Publisher"]


class LabelDelay:
    """How many events go by before each label is published, and which labels never are.

    The delay is ``delay`` events, or uniform in [``delay``, ``delay_max``] when that is set;
    a share ``loss`` of the labels is lost. Both draws are seeded and independent: changing the
    loss keeps every surviving label's delay.

    >>> delays = LabelDelay(delay=1, delay_max=3, loss=0.25, seed=7)
    >>> [delays.draw() for _ in range(6)]
    [1, 3, None, 2, 3, 1]
    """

    def __init__(
        self, delay: int = 0, delay_max: int | None = None, loss: float = 0.0, seed: int = 42
    ):
        if delay < 0 or (delay_max is not None and delay_max < delay):
            raise SourceError(
                f"label delay must be at least 0 and label_delay_max at least label_delay, "
                f"got label_delay={delay}, label_delay_max={delay_max}"
            )
        if not 0.0 <= loss < 1.0:
            raise SourceError(f"label_loss is a share in [0, 1), got {loss}")
        self.delay, self.delay_max, self.loss = delay, delay_max, loss
        self._delays = random.Random(derive_seed(seed, "label-delay"))
        self._losses = random.Random(derive_seed(seed, "label-loss"))

    def draw(self) -> int | None:
        """The next label's delay in events, or None when that label is lost."""
        # Both generators advance on every draw, so each label's fate depends on its position only.
        lost = self._losses.random() < self.loss
        delay = self.delay
        if self.delay_max is not None:
            delay = self._delays.randint(self.delay, self.delay_max)
        return None if lost else delay


class Publisher:
    """Encodes the samples of one stream as feature events and (delayed, lossy) feedback.

    A label with delay ``d`` is due once ``d`` more events have been pushed after its own;
    ``d = 0`` releases it with the push that carried its event. Labels wait in a heap ordered
    by when they fall due, then by their event's position. ``published`` and ``lost`` count
    labels; ``unlabelled`` counts samples that came without one.
    """

    def __init__(
        self,
        stream: str,
        *,
        label_delay: int = 0,
        label_delay_max: int | None = None,
        label_loss: float = 0.0,
        seed: int = 42,
        source: str = "/meander/producer",
    ):
        self.stream, self.source = stream, source
        self.delays = LabelDelay(label_delay, label_delay_max, label_loss, seed)
        self.pushed = self.published = self.lost = self.unlabelled = 0
        self._pending: list[tuple[int, int, str, Any]] = []

    @property
    def pending(self) -> int:
        """Labels drawn but not yet published."""
        return len(self._pending)

    def push(self, samples: Iterable[Sample]) -> tuple[list[Record], list[Record]]:
        """The event records of ``samples``, and the feedback records that became due."""
        events = []
        for sample in samples:
            events.append(self._event(sample))
            self.pushed += 1
            if sample.label is None:
                self.unlabelled += 1
                continue
            delay = self.delays.draw()
            if delay is None:
                self.lost += 1
                continue
            due = self.pushed + delay
            heapq.heappush(self._pending, (due, self.pushed, sample.event_id, sample.label))
        return events, self._release(self.pushed)

    def flush(self) -> list[Record]:
        """Every label still pending, in the order they would have fallen due (end of stream)."""
        return self._release(None)

    def _release(self, until: int | None) -> list[Record]:
        due = []
        while self._pending and (until is None or self._pending[0][0] <= until):
            _, _, event_id, label = heapq.heappop(self._pending)
            due.append(self._feedback(event_id, label))
        self.published += len(due)
        return due

    def _event(self, sample: Sample) -> Record:
        time = {"time": sample.time} if sample.time is not None else {}
        event = FeatureEvent(id=sample.event_id, features=sample.features, **time)
        return encode(
            topics.events(self.stream),
            event,
            source=self.source,
            subject=self.stream,
            event_id=sample.event_id,
            time=sample.time,
        )

    def _feedback(self, event_id: str, label: Any) -> Record:
        return encode(
            topics.feedback(self.stream),
            Feedback(event_id=event_id, label=label),
            source=self.source,
            subject=self.stream,
            event_id=f"{event_id}/feedback",
        )
