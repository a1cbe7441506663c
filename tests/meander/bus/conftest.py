"""Every bus backend, built the same way, so one contract suite runs over all of them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from meander.bus import Bus, MemoryBroker, MemoryBus


@pytest.fixture(
    params=[
        "memory",
        pytest.param("kafka", marks=pytest.mark.integration),
        pytest.param("confluent", marks=pytest.mark.integration),
    ]
)
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    """A fresh bus of each backend; the Kafka ones (kafka-python, confluent-kafka) talk to the
    session's real broker."""
    if request.param == "memory":
        backend: Bus = MemoryBus(MemoryBroker())
    elif request.param == "kafka":
        from meander.bus.kafka import KafkaBus

        backend = KafkaBus(request.getfixturevalue("kafka_bootstrap"), timeout=10)
    else:
        from meander.bus.confluent import ConfluentBus

        backend = ConfluentBus(request.getfixturevalue("kafka_bootstrap"), timeout=10)
    with backend:
        yield backend


@pytest.fixture
def topic(bus: Bus) -> Callable[[int], str]:
    """A factory of new topics with the given partition count; names never repeat on Kafka."""

    def make(partitions: int = 1) -> str:
        name = f"test.{uuid.uuid4().hex[:12]}"
        bus.create_topics({name: partitions})
        return name

    return make


@pytest.fixture
def group() -> str:
    return f"group-{uuid.uuid4().hex[:12]}"
