"""Fixtures of the consumers area: embedded runtimes, small stream configs, seeded samples.

Every runtime gets its own in-process broker and its own fakeredis server, so tests never see
each other's topics, registries, leases or checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, Record, TopicPartition
from meander.config import Settings, StreamConfig
from meander.events import Envelope, decode_batch
from meander.runtime import Runtime
from meander.store import memory_store
from producers.labels import Publisher
from producers.sample import Sample
from producers.synthetic import synthetic


@dataclass
class Published:
    """What :func:`publish_samples` put on the bus."""

    samples: list[Sample]
    events: list[Record]
    feedback: list[Record]


MakeRuntime = Callable[..., Runtime]
MakeStream = Callable[..., StreamConfig]
PublishSamples = Callable[..., Published]
ReadTopic = Callable[[Runtime, str], list[Envelope]]


@pytest.fixture
def make_runtime() -> Iterator[MakeRuntime]:
    """``make_runtime(*streams)``: settings with those streams, a fresh bus and store, and
    every topic the streams need."""
    opened: list[Runtime] = []

    def make(*streams: StreamConfig, **settings: Any) -> Runtime:
        bus = MemoryBus(MemoryBroker())
        bus.create_topics(topics.layout(streams))
        runtime = Runtime(
            Settings(streams=list(streams), **settings), bus, memory_store(fakeredis.FakeServer())
        )
        opened.append(runtime)
        return runtime

    yield make
    for runtime in opened:
        runtime.close()


@pytest.fixture
def make_stream() -> MakeStream:
    """``make_stream(name, source="sea", **options)``: the config of a synthetic stream, with a
    Hoeffding tree unless ``model`` says otherwise."""

    def make(name: str = "sea", source: str = "sea", **options: Any) -> StreamConfig:
        options.setdefault("model", "tree.HoeffdingTreeClassifier")
        return synthetic(source).stream_config(name, **options)

    return make


@pytest.fixture
def publish_samples() -> PublishSamples:
    """``publish_samples(runtime, stream, count, source="sea", ...)``: publish ``count`` seeded
    samples of a synthetic stream as events, then their feedback (``labels=False`` keeps it)."""

    def publish(
        runtime: Runtime,
        stream: StreamConfig,
        count: int,
        *,
        source: str = "sea",
        drift_every: int = 1_000_000,
        seed: int = 7,
        start: int = 0,
        labels: bool = True,
    ) -> Published:
        samples = list(synthetic(source, drift_every=drift_every, seed=seed).samples(start + count))
        samples = samples[start:]
        events, feedback = Publisher(stream.name).push(samples)
        runtime.bus.publish(events)
        if labels:
            runtime.bus.publish(feedback)
        return Published(samples, events, feedback)

    return publish


@pytest.fixture
def read_topic() -> ReadTopic:
    """``read_topic(runtime, topic)``: every event on ``topic`` so far, decoded, partition by
    partition in offset order."""

    def read(runtime: Runtime, topic: str) -> list[Envelope]:
        partitions = [TopicPartition(topic, p) for p in range(runtime.bus.partitions(topic))]
        with runtime.bus.assign(partitions) as consumer:
            messages = []
            while batch := consumer.consume(10_000, 0.0):
                messages += batch
        messages.sort(key=lambda m: (m.partition, m.offset))
        envelopes, rejected = decode_batch(messages)
        assert not rejected, f"undecodable messages on {topic}: {rejected[:3]}"
        return envelopes

    return read
