"""Synthetic streams with abrupt concept drift at known points, from River's generators.

>>> stream = DriftingStream("agrawal", drift_every=3, seed=7)
>>> [concept for concept, _, _ in stream.take(7)]
[0, 0, 0, 2, 2, 2, 5]
>>> stream.drift_points(12)
[3, 6, 9]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from river.datasets import synth

from meander import topics
from meander.bus import Bus
from meander.events import FeatureEvent, Feedback, encode

__all__ = ["CONCEPTS", "DriftingStream", "publish_stream"]

# The concepts a stream cycles through; each concept is one classification function.
CONCEPTS: dict[str, tuple[int, ...]] = {"agrawal": (0, 2, 5, 8), "sea": (0, 1, 2, 3)}


def _generator(name: str, concept: int, seed: int) -> Iterator[tuple[dict[str, Any], Any]]:
    if name == "agrawal":
        return iter(synth.Agrawal(classification_function=concept, seed=seed))
    if name == "sea":
        return iter(synth.SEA(variant=concept, noise=0.1, seed=seed))
    raise ValueError(f"unknown synthetic stream {name!r}; choose one of {sorted(CONCEPTS)}")


class DriftingStream:
    """Samples that switch concept every ``drift_every`` events, cycling through the concepts."""

    def __init__(self, name: str = "agrawal", *, drift_every: int = 10_000, seed: int = 42):
        if name not in CONCEPTS:
            raise ValueError(f"unknown synthetic stream {name!r}; choose one of {sorted(CONCEPTS)}")
        self.name, self.drift_every, self.seed = name, drift_every, seed

    def take(self, count: int) -> Iterator[tuple[int, dict[str, Any], Any]]:
        """``count`` samples as (concept, features, label)."""
        emitted = 0
        for round_, concept in enumerate(itertools.cycle(CONCEPTS[self.name])):
            samples = _generator(self.name, concept, self.seed + round_)
            for features, label in itertools.islice(
                samples, min(self.drift_every, count - emitted)
            ):
                yield concept, features, label
                emitted += 1
            if emitted >= count:
                return

    def drift_points(self, count: int) -> list[int]:
        """The indices at which the concept changes within the first ``count`` events."""
        return list(range(self.drift_every, count, self.drift_every))


def publish_stream(
    bus: Bus, stream: str, samples: Iterator[tuple[int, dict[str, Any], Any]], batch: int = 500
) -> int:
    """Publish each sample as an event followed by its feedback; returns how many were sent."""
    sent = 0
    while chunk := list(itertools.islice(samples, batch)):
        records = []
        for _, features, label in chunk:
            event = FeatureEvent(features=features)
            records.append(encode(topics.events(stream), event, source="/meander/producer"))
            feedback = Feedback(event_id=event.id, label=label)
            records.append(encode(topics.feedback(stream), feedback, source="/meander/producer"))
        bus.publish(records)
        sent += len(chunk)
    return sent
