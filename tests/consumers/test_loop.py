"""The closed loop of one stream: every event served once, and a drift ends in a promotion.

One seeded Stagger stream drifts abruptly halfway; labels come late and some never. The loop
runs once for the module on the embedded backends, and each test reads what it left behind.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import fakeredis
import pytest

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, TopicPartition
from meander.component import YOUNG_COLLECTION_EVERY
from meander.config import Settings, StreamConfig
from meander.consumers.loop import Loop
from meander.events import DeadLetter, Envelope, ModelEvent, Prediction, decode_batch
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.labels import Publisher
from meander.producers.sample import Sample
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.store import memory_store

EVENTS, CHANGE, CHUNK = 3_000, 1_500, 100


@dataclass
class Run:
    runtime: Runtime
    stream: StreamConfig
    loop: Loop
    publisher: Publisher
    samples: list[Sample]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    source = synthetic("stagger", drift_every=CHANGE, seed=3)
    stream = source.stream_config(
        "stagger",
        model="tree.HoeffdingTreeClassifier",
        promotion={"min_samples": 100, "rollback_window": 500},
        learning={"replay_window": 500},
    )
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout([stream]))
    runtime = Runtime(Settings(streams=[stream]), bus, memory_store(fakeredis.FakeServer()))
    loop = Loop(runtime, stream, monitor=False)
    publisher = Publisher("stagger", label_delay=10, label_delay_max=30, label_loss=0.1, seed=3)
    samples = list(source.samples(EVENTS))
    for start in range(0, EVENTS, CHUNK):
        loop.feed(*publisher.push(samples[start : start + CHUNK]))
    loop.feed([], publisher.flush())
    yield Run(runtime, stream, loop, publisher, samples)
    loop.close()
    runtime.close()


def read(run: Run, topic: str) -> list[Envelope]:
    partitions = [TopicPartition(topic, p) for p in range(run.runtime.bus.partitions(topic))]
    with run.runtime.bus.assign(partitions) as consumer:
        messages = []
        while batch := consumer.consume(10_000, 0.0):
            messages += batch
    return decode_batch(messages)[0]


def champion_predictions(run: Run) -> list[Prediction]:
    found = [e.payload for e in read(run, topics.predictions("stagger"))]
    return [p for p in found if isinstance(p, Prediction) and p.role == "champion"]


def model_events(run: Run, action: str) -> list[tuple[str, ModelEvent]]:
    """(CloudEvents id, event) of every ``action`` on ``meander.models``."""
    return [
        (e.id, e.payload)
        for e in read(run, topics.MODELS)
        if isinstance(e.payload, ModelEvent) and e.payload.action == action
    ]


def index(event_id: str | None) -> int:
    return int((event_id or "").rsplit("-", 1)[1])


def test_every_event_gets_exactly_one_champion_prediction(run: Run) -> None:
    served = Counter(p.event_id for p in champion_predictions(run))

    assert served == Counter(s.event_id for s in run.samples)


def test_every_published_label_is_learned_and_nothing_is_dead_lettered(run: Run) -> None:
    state = run.loop.learner.state

    assert state is not None
    assert run.publisher.lost > 0 and run.publisher.pending == 0
    assert state.labels == run.publisher.published
    assert state.counts["rejected_feedback"] == 0
    assert not [e for e in read(run, topics.DEADLETTER) if isinstance(e.payload, DeadLetter)]


def test_the_drift_is_answered_by_a_promotion_descended_from_the_old_champion(run: Run) -> None:
    requests = model_events(run, "retrain_requested")
    promotions = [event for _, event in model_events(run, "promoted")]
    registry = Registry(run.runtime.store, "stagger", signer_for(run.runtime.settings))

    # Labels of one chunk are learned in partition order, so a drift may be found at an
    # event a little before the change; never a chunk before it.
    assert requests and min(index(r.at_event) for _, r in requests) >= CHANGE - CHUNK
    first, *after_drift = promotions
    assert first.previous_version is None
    assert after_drift, "the drift led to no promotion"
    promoted = after_drift[0]
    assert promoted.previous_version == first.version
    entry = registry.get(promoted.version or 0)
    assert entry.parent == first.version
    assert entry.cause["request"] in {request_id for request_id, _ in requests}
    assert [v.version for v in registry.lineage(entry.version)] == [entry.version, first.version]


def test_the_new_champion_serves_after_its_promotion_and_serves_better(run: Run) -> None:
    [_, (_, promoted), *_] = model_events(run, "promoted")
    labels = {s.event_id: s.label for s in run.samples}
    served = {p.event_id: p for p in champion_predictions(run)}

    def accuracy(start: int, end: int) -> float:
        window = [run.samples[i].event_id for i in range(start, end)]
        right = sum(1 for i in window if served[i].prediction == labels[i])
        return right / len(window)

    assert promoted.version in {p.version for p in served.values()}  # hot-swapped in the loop
    assert accuracy(EVENTS - 500, EVENTS) > accuracy(CHANGE, CHANGE + CHUNK)


def test_the_loop_leaves_what_is_alive_before_its_first_feed_out_of_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """And collects the youngest generation as a component process does, until it closes."""
    freezes: list[int] = []
    freeze = gc.freeze

    def counted() -> None:
        freezes.append(gc.get_freeze_count())
        freeze()

    monkeypatch.setattr(gc, "freeze", counted)
    source = synthetic("stagger", drift_every=1_000, seed=3)
    stream = source.stream_config("frozen", candidates=[])
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout([stream]))
    runtime = Runtime(Settings(streams=[stream]), bus, memory_store(fakeredis.FakeServer()))
    gc.unfreeze()
    before = gc.get_threshold()
    try:
        loop = Loop(runtime, stream, monitor=False)
        publisher = Publisher("frozen")
        samples = list(source.samples(300))
        for start in range(0, 300, CHUNK):
            loop.feed(*publisher.push(samples[start : start + CHUNK]))
        loop.feed([], publisher.flush())

        # Once, before the first feed (nothing was frozen yet), and the run went on as ever.
        assert freezes == [0]
        assert gc.get_freeze_count() > 10_000
        assert loop.learner.state is not None and loop.learner.state.labels == 300
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *before[1:])
        loop.close()
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        runtime.close()


def test_a_loop_shares_its_models_by_labels_never_by_the_wall_clock() -> None:
    # A backtest's time is its records': had the learner shared what it learned once the wall
    # clock said so, what the predictor serves would depend on how fast the machine ran.
    source = synthetic("stagger", seed=3)
    stream = source.stream_config("counted", learning={"publish_seconds": 0.001})
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout([stream]))
    runtime = Runtime(Settings(streams=[stream]), bus, memory_store(fakeredis.FakeServer()))
    loop = Loop(runtime, stream, monitor=False)
    registry = Registry(runtime.store, "counted", signer_for(runtime.settings))
    champion = registry.champion()
    assert champion is not None
    try:
        registered = registry.heads().revisions[champion]
        loop.feed(*Publisher("counted").push(list(source.samples(5))))
        loop.feed([], [])

        # 5 labels are fewer than a young model's pace (6): no snapshot, however long it took.
        assert loop.learner.state is not None and loop.learner.state.labels == 5
        assert registry.heads().revisions[champion] == registered
    finally:
        loop.close()
        runtime.close()
