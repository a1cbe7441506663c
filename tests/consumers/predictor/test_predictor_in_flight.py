"""The predictor does not wait for its predictions to be stored, yet commits nothing before."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from river import tree

from meander import topics
from meander.bus import Delivered, MemoryBroker, MemoryBus, Record, Sending, TopicPartition
from meander.component import drain
from meander.consumers.predictor.predictor import Predictor
from meander.events import Prediction
from meander.exceptions import BusError
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime

if TYPE_CHECKING:
    from tests.consumers.conftest import MakeRuntime, MakeStream, PublishSamples, ReadTopic


class Held(Sending):
    """Records the broker has not stored yet: they land when the test (or a wait) says so."""

    def __init__(self, bus: HeldBus, records: Sequence[Record]) -> None:
        self.bus, self.records = bus, list(records)
        self.delivered: list[Delivered] | None = None
        self.error: BusError | None = None

    def done(self) -> bool:
        return self.delivered is not None or self.error is not None

    def wait(self, timeout: float | None = None) -> list[Delivered]:
        if not self.done():
            self.land()
        if self.error is not None:
            raise self.error
        assert self.delivered is not None
        return self.delivered

    def land(self) -> None:
        self.delivered = self.bus.publish(self.records)

    def fail(self) -> None:
        self.error = BusError("the broker is gone")


class HeldBus(MemoryBus):
    """An embedded bus whose ``send`` hands back batches that wait to be stored."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.held: list[Held] = []

    def send(self, records: Sequence[Record]) -> Sending:
        self.check_records(records)
        self.held.append(Held(self, records))
        return self.held[-1]


def champion(runtime: Runtime, name: str) -> None:
    model = tree.HoeffdingTreeClassifier()
    for i in range(5):
        model.learn_one({"x0": float(i), "x1": 1.0, "x2": 2.0}, True)
    registry = Registry(runtime.store, name, signer_for(runtime.settings))
    registry.promote(registry.register(model, spec="tree.HoeffdingTreeClassifier").version)


@pytest.fixture
def held(make_stream: MakeStream, make_runtime: MakeRuntime) -> Runtime:
    """A runtime whose bus holds what the predictor sends, on the same broker as the plain one."""
    stream = make_stream("s")
    plain = make_runtime(stream)
    assert isinstance(plain.bus, MemoryBus)
    champion(plain, stream.name)
    return Runtime(plain.settings, HeldBus(plain.bus.broker), plain.store)


def committed(runtime: Runtime) -> dict[int, int | None]:
    """The predictors' group's committed offsets, read without joining it."""
    assert isinstance(runtime.bus, MemoryBus)
    name = topics.events("s")
    offsets = runtime.bus.broker.group("meander-predictor-s").committed
    return {p: offsets.get(TopicPartition(name, p)) for p in range(3)}


def champion_predictions(runtime: Runtime, read_topic: ReadTopic) -> Counter[str]:
    found = read_topic(runtime, topics.predictions("s"))
    return Counter(
        e.payload.event_id
        for e in found
        if isinstance(e.payload, Prediction) and e.payload.role == "champion"
    )


def test_a_predictor_killed_before_its_predictions_are_stored_loses_nothing(
    held: Runtime, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    stream = held.settings.streams[0]
    published = publish_samples(held, stream, 200, labels=False)
    predictor = Predictor(held, stream, batch=30)

    assert drain([predictor]) == 200  # everything read and scored, nothing acknowledged yet

    assert committed(held) == {0: None, 1: None, 2: None}
    predictor.consumer.close()  # killed: what was sent but not stored is lost with it
    assert isinstance(held.bus, HeldBus)
    again = Predictor(Runtime(held.settings, MemoryBus(held.bus.broker), held.store), stream)
    drain([again])
    again.close()

    ids = [s.event_id for s in published.samples]
    assert champion_predictions(held, read_topic) == Counter(ids)  # each exactly once


def test_offsets_are_committed_in_order_as_predictions_are_stored(
    held: Runtime, publish_samples: PublishSamples
) -> None:
    stream = held.settings.streams[0]
    publish_samples(held, stream, 90, labels=False)
    predictor = Predictor(held, stream, batch=30)
    bus = held.bus
    assert isinstance(bus, HeldBus)

    assert drain([predictor]) == 90
    bus.held[1].land()  # the second batch is stored before the first
    predictor.step()
    assert committed(held) == {0: None, 1: None, 2: None}

    bus.held[0].land()
    predictor.step()
    stored = [m for h in bus.held[:2] for m in h.records]
    assert sum(o or 0 for o in committed(held).values()) == 60 == len(stored)
    predictor.close()  # closing waits for the rest and commits it
    assert sum(o or 0 for o in committed(held).values()) == 90


def test_a_batch_that_cannot_be_stored_is_read_and_scored_again(
    held: Runtime, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    stream = held.settings.streams[0]
    published = publish_samples(held, stream, 60, labels=False)
    predictor = Predictor(held, stream, batch=30)
    bus = held.bus
    assert isinstance(bus, HeldBus)
    predictor.step()
    predictor.step()
    bus.held[0].land()
    bus.held[1].fail()

    with pytest.raises(BusError, match="read again"):
        predictor.step()

    assert sum(o or 0 for o in committed(held).values()) == 30
    drain([predictor])
    predictor.close()
    assert champion_predictions(held, read_topic) == Counter(s.event_id for s in published.samples)
    assert sum(o or 0 for o in committed(held).values()) == 60


def test_closing_with_a_batch_that_cannot_be_stored_commits_the_rest_and_does_not_raise(
    held: Runtime, publish_samples: PublishSamples, caplog: pytest.LogCaptureFixture
) -> None:
    stream = held.settings.streams[0]
    publish_samples(held, stream, 60, labels=False)
    predictor = Predictor(held, stream, batch=30)
    bus = held.bus
    assert isinstance(bus, HeldBus)
    predictor.step()
    predictor.step()
    bus.held[1].fail()

    predictor.close()

    assert sum(o or 0 for o in committed(held).values()) == 30
    assert "not all committed on close" in caplog.text
