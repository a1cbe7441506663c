"""A concept that comes back: the loop serves the retired version that knows it again, within
a race's length of the change.

A seeded Stagger stream's labels flip at event 1,500 and flip back at 3,000. By then the first
champion has been retired by one that learned the flipped labels; when the first concept
returns, the detector catches the change at once, no label says which concept came, and the
retired version races as it stands beside the cold models.
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

EVENTS, FLIP, BACK, CHUNK = 4_000, 1_500, 3_000, 100


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Registry, list[ModelEvent]]]:
    """The registry, and every decision on ``meander.models``."""
    source = synthetic("stagger", drift_every=EVENTS, seed=5)
    stream = source.stream_config("stagger", model="tree.HoeffdingTreeClassifier")
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout([stream]))
    runtime = Runtime(Settings(streams=[stream]), bus, memory_store(fakeredis.FakeServer()))
    loop = Loop(runtime, stream, monitor=False)
    registry = Registry(runtime.store, "stagger", signer_for(runtime.settings))
    publisher = Publisher("stagger")
    samples = list(source.samples(EVENTS))
    for start in range(0, EVENTS, CHUNK):
        chunk = samples[start : start + CHUNK]
        if FLIP <= start < BACK:
            chunk = [dataclasses.replace(s, label=not s.label) for s in chunk]
        loop.feed(*publisher.push(chunk))
    loop.feed([], publisher.flush())
    yield registry, model_events(runtime)
    loop.close()
    runtime.close()


def test_a_returning_concept_is_served_by_the_retired_version_that_knows_it(
    run: tuple[Registry, list[ModelEvent]],
) -> None:
    registry, events = run
    promoted = [e for e in events if e.action == "promoted" and e.previous_version is not None]
    flipped = [e for e in promoted if FLIP <= event_number(e.at_event) < BACK]
    back = [e for e in promoted if event_number(e.at_event) >= BACK]
    assert flipped and back, "no promotion after one of the two changes"
    request = [
        e for e in events if e.action == "retrain_requested" and event_number(e.at_event) >= BACK
    ]
    assert request[0].evidence["since_change"] == 0  # caught at once: nothing to score on
    first = back[0]
    training = registry.get(first.version).training
    assert training["origin"] == "past_version"
    assert training["source_version"] == flipped[0].previous_version  # the first concept's
    # The next chunk after the alert, then the 100 shared events a race needs.
    assert event_number(first.at_event) < BACK + 300
