"""The producer component on the embedded bus: what lands on which topic, and when."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from meander import topics
from meander.bus import (
    Bus,
    Delivered,
    MemoryBroker,
    MemoryBus,
    Message,
    Record,
    TopicPartition,
    connect_bus,
)
from meander.component import drain
from meander.config import Settings
from meander.consumers import assembly
from meander.events import FeatureEvent, Feedback, decode
from meander.exceptions import BusUnavailable, ConfigError
from meander.producers import SourceError, synthetic
from meander.producers.pacing import FakeClock, TokenBucket
from meander.producers.runner import Producer
from meander.runtime import Runtime
from meander.store import memory_store

SEA = synthetic("sea").stream_config("sea")

WriteFile = Callable[[pd.DataFrame, str], Path]  # the write_file fixture (conftest.py)


def _settings(name: str = "sea", **producer: Any) -> Settings:
    """Settings with one SEA-shaped stream called ``name`` and these producer settings."""
    config = SEA.model_copy(update={"name": name})
    return Settings(streams=[config], producer={"source": "sea", "progress": False, **producer})


@pytest.fixture
def runtime_for() -> Iterator[Any]:
    """Builds a runtime on a fresh embedded bus with the settings' topics created."""
    opened: list[Runtime] = []

    def build(settings: Settings, bus: Bus | None = None) -> Runtime:
        bus = bus or MemoryBus(MemoryBroker())
        bus.create_topics(topics.layout(settings.streams))
        runtime = Runtime(settings, bus, memory_store())
        opened.append(runtime)
        return runtime

    yield build
    for runtime in opened:
        runtime.bus.close()


def _read(bus: Bus, topic: str) -> list[Message]:
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    with bus.assign(partitions) as reader:
        messages: list[Message] = []
        while batch := reader.consume(max_records=10_000, timeout=0.1):
            messages.extend(batch)
    return messages


def _without_time(value: bytes) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(value)
    del body["time"]  # the time an event was made differs between two runs
    return body


def test_events_and_delayed_lossy_feedback_land_on_the_stream_topics(runtime_for: Any) -> None:
    settings = _settings(events=1_000, batch=100, label_delay=10, label_loss=0.2, seed=3)
    runtime = runtime_for(settings)
    producer = Producer(runtime)
    handled = drain([producer])
    publisher = producer.publisher
    assert publisher.pushed == 1_000 and publisher.lost + publisher.published == 1_000
    assert 150 < publisher.lost < 250
    assert handled == 1_000 + publisher.published

    events = [decode(m) for m in _read(runtime.bus, "sea.events")]
    feedback = [decode(m) for m in _read(runtime.bus, "sea.feedback")]
    assert len(events) == 1_000 and len(feedback) == publisher.published
    assert all(isinstance(e.payload, FeatureEvent) for e in events)
    assert all(isinstance(f.payload, Feedback) for f in feedback)
    ids = {e.payload.id for e in events if isinstance(e.payload, FeatureEvent)}
    assert ids == {f"sea-3-{i:08d}" for i in range(1_000)}
    labelled = {f.payload.event_id for f in feedback if isinstance(f.payload, Feedback)}
    assert labelled <= ids and len(labelled) == publisher.published
    assert _read(runtime.bus, "sea.predictions") == []


def test_each_step_publishes_a_batch_then_the_due_labels_then_nothing(
    runtime_for: Any,
) -> None:
    finished: list[bool] = []
    settings = _settings(events=250, batch=100, label_delay=150)
    runtime = runtime_for(settings)
    producer = Producer(runtime, on_finished=lambda: finished.append(True))
    # Labels fall due 150 events late: none with the first batch, 50 with the second...
    assert [producer.step() for _ in range(3)] == [100, 100 + 50, 50 + 50]
    assert not finished
    # ...and the 150 still pending when the source runs out come with the closing step.
    assert producer.step() == 150 and finished == [True]
    assert [producer.step() for _ in range(3)] == [0, 0, 0] and finished == [True]
    assert len(_read(runtime.bus, "sea.feedback")) == 250


def test_the_same_settings_publish_the_same_events(runtime_for: Any) -> None:
    settings = Settings(
        streams=[synthetic("agrawal").stream_config("agrawal")],
        producer={"progress": False, "events": 300, "source": "agrawal", "drift_every": 100},
    )

    def published(runtime: Runtime) -> list[dict[str, Any]]:
        drain([Producer(runtime)])
        return [_without_time(m.value) for m in _read(runtime.bus, "agrawal.events")]

    first, second = published(runtime_for(settings)), published(runtime_for(settings))
    assert len(first) == 300 and first == second


def test_a_csv_file_is_replayed_with_its_target_as_feedback(
    runtime_for: Any, write_file: WriteFile, loans: pd.DataFrame
) -> None:
    path = write_file(loans.drop(columns=["at"]), "loans.csv")
    settings = Settings(
        streams=[{"name": "loans", "task": "binary", "features": {"amount": "numeric"}}],
        producer={"source": str(path), "target": "default", "id_column": "loan_id", "batch": 2},
    )
    runtime = runtime_for(settings)
    producer = Producer(runtime)
    drain([producer])
    events = [decode(m).payload for m in _read(runtime.bus, "loans.events")]
    feedback = [decode(m).payload for m in _read(runtime.bus, "loans.feedback")]
    assert sorted(e.id for e in events if isinstance(e, FeatureEvent)) == [
        "a1",
        "a2",
        "a3",
        "a4",
        "a5",
    ]
    # Row a3 has no label: its event is published, its feedback is not.
    assert sorted((f.event_id, f.label) for f in feedback if isinstance(f, Feedback)) == [
        ("a1", 0),
        ("a2", 1),
        ("a4", 0),
        ("a5", 1),
    ]
    assert producer.publisher.unlabelled == 1


def test_a_rate_limited_step_publishes_what_the_bucket_allows(
    runtime_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()

    def paced(rate: float, burst: float | None = None) -> TokenBucket:
        return TokenBucket(rate, burst=burst, clock=clock.now, sleep=clock.sleep)

    monkeypatch.setattr("meander.producers.runner.TokenBucket", paced)
    runtime = runtime_for(_settings(events=1_000, rate=200.0))
    producer = Producer(runtime)
    assert producer.step(0.0) == 2 * 200  # a full bucket: a second's events, with labels
    assert producer.step(0.0) == 0  # nothing flowed in since
    assert producer.step(0.05) == 2 * 10  # waits 50 ms of the fake clock for ten events
    assert clock.now() == pytest.approx(0.05)


class _FailingOnce(MemoryBus):
    """An embedded bus whose second publish fails, as a broker that drops out for a moment."""

    def __init__(self) -> None:
        super().__init__(MemoryBroker())
        self.calls = 0

    def publish(self, records: Sequence[Record], timeout: float | None = None) -> list[Delivered]:
        self.calls += 1
        if self.calls == 2:
            raise BusUnavailable("broker unavailable for a moment")
        return super().publish(records, timeout)


def test_a_failed_publish_is_sent_again_by_the_next_step(runtime_for: Any) -> None:
    settings = _settings(events=300, batch=100, label_delay=100)
    runtime = runtime_for(settings, bus=_FailingOnce())
    producer = Producer(runtime)
    assert producer.step() == 100  # the events went out...
    with pytest.raises(BusUnavailable):
        producer.step()  # ...the second batch's events did not
    assert producer.step() == 100 + 100  # they go first, then the first batch's labels
    drain([producer])
    events = _read(runtime.bus, "sea.events")
    assert len(events) == len({m.key for m in events}) == 300
    assert len(_read(runtime.bus, "sea.feedback")) == 300


def test_an_unknown_source_names_the_choices(runtime_for: Any) -> None:
    with pytest.raises(SourceError, match=r"name a synthetic generator \(agrawal, .*\.parquet"):
        Producer(runtime_for(_settings(source="kafka://elsewhere")))


def test_without_a_stream_the_producer_says_how_to_configure_one(runtime_for: Any) -> None:
    with pytest.raises(ConfigError, match=r"configure one under \[\[streams\]\]"):
        Producer(runtime_for(Settings()))
    # A stream the settings do not configure is refused with them, before any producer.
    with pytest.raises(ValidationError, match=r"producer\.stream 'other' is not a configured"):
        _settings("sea", stream="other")


def test_run_producer_publishes_a_finite_source_and_returns(logging_kept: None) -> None:
    stream = f"main-{uuid.uuid4().hex[:8]}"
    settings = _settings(stream, events=500, label_delay=20, stream=stream)
    settings = settings.model_copy(update={"metrics_port": 0})  # the port is not under test
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assembly.run(["producer"], settings)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    with connect_bus(settings) as bus:  # run used the process-wide embedded broker
        assert len(_read(bus, topics.events(stream))) == 500
        assert len(_read(bus, topics.feedback(stream))) == 500


def test_what_the_bus_took_is_counted_once_a_failed_publish_not_at_all(runtime_for: Any) -> None:
    name = f"counted{uuid.uuid4().hex[:8]}"
    settings = _settings(name, events=300, batch=100, label_delay=100)
    runtime = runtime_for(settings, bus=_FailingOnce())
    labels = {"component": "producer", "stream": name}
    producer = Producer(runtime)
    producer.step()
    with pytest.raises(BusUnavailable):
        producer.step()
    assert REGISTRY.get_sample_value("meander_events_produced_total", labels) == 100

    drain([producer])

    assert REGISTRY.get_sample_value("meander_events_produced_total", labels) == 600


def test_a_producer_started_again_publishes_only_what_its_topics_do_not_hold(
    runtime_for: Any,
) -> None:
    settings = _settings(events=1_000, batch=100, label_delay=50, label_loss=0.1)
    runtime = runtime_for(settings)
    stopped = Producer(runtime)
    for _ in range(3):  # stopped after three batches, as by a kill
        stopped.step()
    again = Producer(runtime, settings.producer.model_copy(update={"batch": 70}))
    assert again.stamps.resuming
    drain([again])

    def keys(topic: str) -> list[bytes | None]:
        return [m.key for m in _read(runtime.bus, topic)]

    events, feedback = keys("sea.events"), keys("sea.feedback")
    assert len(events) == len(set(events)) == 1_000
    assert len(feedback) == len(set(feedback)) == again.publisher.published
    assert again.stamps.skipped == 300 + stopped.publisher.published
    # Other settings are another run: it starts from the beginning.
    other = Producer(runtime, settings.producer.model_copy(update={"seed": 7}))
    assert not other.stamps.resuming
