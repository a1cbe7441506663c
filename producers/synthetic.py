"""Seeded synthetic streams whose concept drifts where, and how, they say it does.

A stream is a generator (see :data:`GENERATORS`) and a drift kind:

- ``abrupt``: the concept switches every ``drift_every`` events, cycling through the concepts;
- ``gradual``: from each switch on, the new concept is drawn with a probability that climbs
  linearly over ``width`` events, so both concepts mix inside the width and only there;
- ``recurring``: abrupt switches between the first two concepts, which keep coming back;
- ``incremental``: the concept moves a little at every event (Hyperplane's ``mag_change``,
  RandomRBFDrift's ``change_speed``, a linear target's weights), about one concept's distance
  every ``drift_every`` events.

The same name, drift, period, width and seed give the same samples, with the same event ids.

>>> stream = synthetic("sea", drift="recurring", drift_every=3, seed=7)
>>> [s.concept for s in stream.samples(8)]
[0, 0, 0, 1, 1, 1, 0, 0]
>>> stream.drift_points(8), stream.task
([3, 6], 'binary')
>>> next(stream.samples(1)).event_id
'sea-7-00000000'
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

from meander.bus import Bus
from meander.config import StreamConfig
from meander.producers.exceptions import SourceError
from meander.producers.generators import GENERATORS, Generator, Raw
from meander.producers.labels import Publisher
from meander.producers.sample import Sample, event_id
from meander.producers.seeds import derive_seed

__all__ = [
    "DRIFTS",
    "GENERATORS",
    "Drift",
    "DriftingStream",
    "SyntheticStream",
    "publish_stream",
    "synthetic",
]

DriftKind = Literal["abrupt", "gradual", "incremental", "recurring"]
DRIFTS: tuple[DriftKind, ...] = ("abrupt", "gradual", "incremental", "recurring")


@dataclass(frozen=True, slots=True)
class Drift:
    """A true change of concept: it starts at event ``start`` and lasts ``width`` events.

    ``width`` is 0 for an abrupt switch. ``before`` and ``after`` are the concepts on either
    side, None for incremental drift, where the concept never stands still.
    """

    start: int
    width: int
    before: int | None
    after: int | None


class SyntheticStream:
    """A seeded synthetic stream; build one with :func:`synthetic`."""

    def __init__(
        self, generator: Generator, drift: DriftKind, drift_every: int, width: int, seed: int
    ):
        self.generator, self.drift, self.seed = generator, drift, seed
        self.drift_every, self.width = drift_every, width

    @property
    def name(self) -> str:
        return self.generator.name

    @property
    def task(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        return self.generator.task

    def features(self) -> dict[str, str]:
        """Each feature's type: ``numeric``, ``categorical`` or ``boolean``."""
        return dict(self.generator.features)

    def stream_config(self, name: str | None = None, **options: Any) -> StreamConfig:
        """A stream configuration with this stream's task and features; ``options`` add to it."""
        return StreamConfig(
            name=name or self.name, task=self.task, features=self.features(), **options
        )

    def samples(self, count: int | None = None) -> Iterator[Sample]:
        """The first ``count`` samples, or an endless stream when ``count`` is None."""
        raw = self._moving() if self.drift == "incremental" else self._switching()
        for index, (concept, (x, y)) in enumerate(itertools.islice(raw, count)):
            yield Sample(index, event_id(self.name, self.seed, index), x, y, concept)

    def drifts(self, count: int) -> list[Drift]:
        """The true drifts that start within the first ``count`` events."""
        if self.drift == "incremental":
            return [Drift(0, count, None, None)] if count > 0 else []
        width = self.width if self.drift == "gradual" else 0
        return [
            Drift(start, width, self._concept_of(segment - 1), self._concept_of(segment))
            for segment, start in enumerate(range(0, count, self.drift_every))
            if segment > 0
        ]

    def drift_points(self, count: int) -> list[int]:
        """The indices where a drift starts within the first ``count`` events."""
        return [drift.start for drift in self.drifts(count)]

    def _concept_of(self, segment: int) -> int:
        concepts = self.generator.concepts
        if self.drift == "recurring":
            concepts = concepts[:2]
        return concepts[segment % len(concepts)]

    def _switching(self) -> Iterator[tuple[int | None, tuple[dict[str, Any], Any]]]:
        # One live generator per concept: a concept that comes back resumes where it stopped,
        # so it keeps its function without repeating its earlier samples.
        live: dict[int, Raw] = {}
        mixer = random.Random(derive_seed(self.seed, "gradual"))
        for index in itertools.count():
            segment, offset = divmod(index, self.drift_every)
            concept = self._concept_of(segment)
            old_share = self._old_share(segment, offset)
            if old_share and mixer.random() < old_share:
                concept = self._concept_of(segment - 1)
            if concept not in live:
                live[concept] = self.generator.concept(concept, self.seed)
            yield concept, next(live[concept])

    def _old_share(self, segment: int, offset: int) -> float:
        # Inside a gradual drift's width the old concept's share falls from w/(w+1) to
        # 1/(w+1); outside it is 0, so concepts mix inside the width and nowhere else.
        if self.drift != "gradual" or segment == 0 or offset >= self.width:
            return 0.0
        return (self.width - offset) / (self.width + 1)

    def _moving(self) -> Iterator[tuple[int | None, tuple[dict[str, Any], Any]]]:
        assert self.generator.moving is not None  # synthetic() refuses it otherwise
        for sample in self.generator.moving(self.seed, self.drift_every):
            yield None, sample


def synthetic(
    name: str,
    *,
    drift: str = "abrupt",
    drift_every: int = 10_000,
    width: int = 1_000,
    seed: int = 42,
) -> SyntheticStream:
    """A seeded stream of generator ``name`` with ``drift`` every ``drift_every`` events.

    ``width`` is how many events a gradual drift lasts; it must fit in ``drift_every``.
    SourceError names the valid choices when a name, a drift kind or a width is wrong.

    >>> stream = synthetic("agrawal", drift="gradual", drift_every=1_000, width=200, seed=1)
    >>> stream.drifts(2_500)[1]
    Drift(start=2000, width=200, before=2, after=5)
    """
    generator = GENERATORS.get(name)
    if generator is None:
        raise SourceError(
            f"unknown synthetic generator {name!r}; choose one of {sorted(GENERATORS)}"
        )
    if drift not in DRIFTS:
        raise SourceError(f"unknown drift {drift!r}; choose one of {list(DRIFTS)}")
    if drift == "incremental" and generator.moving is None:
        movers = sorted(n for n, g in GENERATORS.items() if g.moving is not None)
        raise SourceError(
            f"generator {name!r} has no continuously moving concept; incremental drift needs "
            f"one of {movers}, or choose abrupt, gradual or recurring drift"
        )
    if drift_every < 1:
        raise SourceError(f"drift_every must be at least 1, got {drift_every}")
    if drift == "gradual" and not 1 <= width <= drift_every:
        raise SourceError(
            f"a gradual drift's width must be between 1 and drift_every ({drift_every}), "
            f"got {width}: lower the width or raise drift_every"
        )
    return SyntheticStream(generator, drift, drift_every, width, seed)


class DriftingStream:
    """Abrupt drift every ``drift_every`` events, as (concept, features, label) tuples.

    The first form of :func:`synthetic`, kept for the demo; new code uses :func:`synthetic`.

    >>> stream = DriftingStream("agrawal", drift_every=3, seed=7)
    >>> [concept for concept, _, _ in stream.take(7)]
    [0, 0, 0, 2, 2, 2, 5]
    >>> stream.drift_points(12)
    [3, 6, 9]
    """

    def __init__(self, name: str = "agrawal", *, drift_every: int = 10_000, seed: int = 42):
        self.stream = synthetic(name, drift="abrupt", drift_every=drift_every, seed=seed)

    def take(self, count: int) -> Iterator[tuple[int, dict[str, Any], Any]]:
        """``count`` samples as (concept, features, label)."""
        for sample in self.stream.samples(count):
            yield cast(int, sample.concept), sample.features, sample.label

    def drift_points(self, count: int) -> list[int]:
        """The indices at which the concept changes within the first ``count`` events."""
        return self.stream.drift_points(count)


def publish_stream(
    bus: Bus, stream: str, samples: Iterable[tuple[int, dict[str, Any], Any]], batch: int = 500
) -> int:
    """Publish each (concept, features, label) as an event and, at once, its feedback.

    Returns how many samples were sent. Use a :class:`~meander.producers.labels.Publisher` for
    delayed or lost labels.
    """
    publisher = Publisher(stream)
    numbered = enumerate(samples)
    while chunk := list(itertools.islice(numbered, batch)):
        events, feedback = publisher.push(
            Sample(index, uuid.uuid4().hex, features, label, concept)
            for index, (concept, features, label) in chunk
        )
        bus.publish(events + feedback)
    return publisher.pushed
