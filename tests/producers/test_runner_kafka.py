"""The producer against a real Kafka broker: what it publishes is there to read back."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from meander import topics
from meander.bus import Bus, Message, TopicPartition
from meander.component import drain
from meander.config import Settings
from meander.events import FeatureEvent, Feedback, decode
from meander.producers import synthetic
from meander.producers.runner import Producer
from meander.runtime import Runtime

pytestmark = pytest.mark.integration


def _read(bus: Bus, topic: str, expected: int, within: float = 30.0) -> list[Message]:
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    messages: list[Message] = []
    deadline = time.monotonic() + within
    with bus.assign(partitions) as reader:
        while len(messages) < expected and time.monotonic() < deadline:
            messages.extend(reader.consume(max_records=5_000, timeout=1.0))
    return messages


def test_the_producer_publishes_events_and_feedback_to_kafka(kafka_bootstrap: str) -> None:
    name = f"producer-{uuid.uuid4().hex[:8]}"  # a broker may outlive the test run
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        streams=[synthetic("agrawal").stream_config(name, partitions=2)],
        producer={
            "source": "agrawal",
            "events": 2_000,
            "batch": 250,
            "drift": "gradual",
            "drift_every": 500,
            "drift_width": 100,
            "label_delay": 10,
            "label_delay_max": 100,
            "label_loss": 0.1,
            "progress": False,
        },
    )
    with Runtime.open(settings) as runtime:
        producer = Producer(runtime)
        drain([producer])
        published = producer.publisher.published
        events = [decode(m) for m in _read(runtime.bus, topics.events(name), 2_000)]
        feedback = [decode(m) for m in _read(runtime.bus, topics.feedback(name), published)]

    assert len(events) == 2_000 and len(feedback) == published
    assert 100 < producer.publisher.lost < 300
    sent = {
        e.payload.id: e.message.partition for e in events if isinstance(e.payload, FeatureEvent)
    }
    ids = Counter(e.payload.id for e in events if isinstance(e.payload, FeatureEvent))
    assert set(ids) == {f"agrawal-42-{i:08d}" for i in range(2_000)} and max(ids.values()) == 1
    labels = {
        f.payload.event_id: f.message.partition for f in feedback if isinstance(f.payload, Feedback)
    }
    assert set(labels) <= set(sent) and len(labels) == published
    # The key is the event id, so an event and its feedback share a partition number.
    assert all(sent[event_id] == partition for event_id, partition in labels.items())
