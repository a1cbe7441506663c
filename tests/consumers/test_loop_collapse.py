"""A new champion that collapses during its watch: the loop rolls it back within a few dozen
labels, not at the end of the watch.

A seeded Stagger stream's labels flip at event 1,500; the champion errs, a challenger trained
on the flipped labels wins and is promoted, and from the next chunk on the labels are flipped
back. The new champion now errs on nearly every event and the one it replaced, which still
knows the first concept, is right on most: it is the one to serve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import fakeredis
import pytest

from meander import topics
from meander.bus import MemoryBroker, MemoryBus
from meander.config import Settings
from meander.consumers.loop import Loop
from meander.events import ModelEvent
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.store import memory_store
from tests.conftest import event_number, model_events

EVENTS, FLIP, CHUNK = 2_500, 1_500, 20


@pytest.fixture(scope="module")
def decisions() -> Iterator[tuple[int, list[ModelEvent]]]:
    """When the labels were flipped back, and every decision on ``meander.models``."""
    source = synthetic("stagger", drift_every=EVENTS, seed=3)
    stream = source.stream_config(
        "stagger",
        model="tree.HoeffdingTreeClassifier",
        promotion={"min_samples": 100, "rollback_window": 1_000},
        learning={"replay_window": 500},
    )
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout([stream]))
    runtime = Runtime(Settings(streams=[stream]), bus, memory_store(fakeredis.FakeServer()))
    loop = Loop(runtime, stream, monitor=False)
    registry = Registry(runtime.store, "stagger", signer_for(runtime.settings))
    publisher = Publisher("stagger", label_delay=10, label_delay_max=30, seed=3)
    samples, first, back = list(source.samples(EVENTS)), None, EVENTS
    for start in range(0, EVENTS, CHUNK):
        chunk = samples[start : start + CHUNK]
        if FLIP <= start < back:
            chunk = [dataclasses.replace(s, label=not s.label) for s in chunk]
        loop.feed(*publisher.push(chunk))
        first = first or registry.champion()
        if back == EVENTS and registry.champion() != first:
            back = start + CHUNK  # a new champion: the labels it learned flip back
    loop.feed([], publisher.flush())
    yield back, model_events(runtime)
    loop.close()
    runtime.close()


def test_the_collapsed_champion_is_rolled_back_to_the_one_it_replaced_within_dozens_of_labels(
    decisions: tuple[int, list[ModelEvent]],
) -> None:
    back, events = decisions
    promoted = [e for e in events if e.action == "promoted"][-1]
    assert back < EVENTS, "the flipped labels led to no promotion"
    rolled_back = [e for e in events if e.action == "rolled_back"]
    assert rolled_back, "the collapsed champion was never rolled back"
    first = rolled_back[0]
    assert (first.version, first.previous_version) == (promoted.previous_version, promoted.version)
    # Labels come 10 to 30 events late: a few dozen labels after the flip back.
    assert event_number(first.at_event) < back + 150
    assert first.evidence["stage"] == "rollback_window"
    assert "Roll back" in first.reason and "less accurate grew" in first.reason
