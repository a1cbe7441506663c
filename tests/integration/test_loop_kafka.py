"""The closed loop on real Kafka and Redis, each component in its own process.

A learner, a predictor and a trainer run as ``meander run NAME`` from one TOML config. The test
publishes a seeded stream whose concept changes abruptly halfway, with labels a few dozen
events late, and checks the loop closes by itself: every event is served exactly once by the
champion, the learner raises a concept drift alert after the change, the trainer answers its
retrain request with a challenger that passes the gate and is promoted with its lineage in the
registry, and the served accuracy recovers.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from meander import topics
from meander.bus import Bus, Consumer, Message, TopicPartition
from meander.config import Settings, StreamConfig, load_settings
from meander.consumers.learner.checkpoint import Checkpoints
from meander.events import Alert, ModelEvent, Prediction, decode_batch
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.labels import Publisher
from meander.producers.sample import Sample
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

DRIFT_AT = 3_000  # the concept changes at this event, once
EVENTS = 6_000
CHUNK = 100  # events published, then scored, before the labels that fell due
LABEL_DELAY = 50  # events between an event and its label
MAX_LEARNER_LAG = 300  # labels the learner may be behind before publishing waits for it
# Fires on a large rise of the champion's error, not on the small ones of a young tree: this
# test is about the loop's mechanics on one known change (false alarms are the benchmarks').
DETECTOR = "drift.PageHinkley(mode='up', delta=0.005, threshold=50)"
TRAINER_GRACE = 20.0  # seconds the stream waits for the trainer to answer a retrain request


class Served:
    """What the predictors served, followed as it is published: event id -> champion answers."""

    def __init__(self, bus: Bus, stream: str) -> None:
        topic = topics.predictions(stream)
        self.consumer: Consumer = bus.assign(
            [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
        )
        self.champion: dict[str, Any] = {}

    def covers(self, samples: Sequence[Sample]) -> bool:
        for envelope in decode_batch(self.consumer.consume(5_000, 0.1))[0]:
            prediction = envelope.payload
            if isinstance(prediction, Prediction) and prediction.role == "champion":
                self.champion[prediction.event_id] = prediction.prediction
        return all(sample.event_id in self.champion for sample in samples)


class Requests:
    """Retrain requests of one stream on ``meander.models`` that the trainer has not answered."""

    def __init__(self, bus: Bus, stream: str) -> None:
        self.stream = stream
        models = TopicPartition(topics.MODELS, 0)
        self.consumer: Consumer = bus.assign([models])
        self.consumer.seek(models, self.consumer.end_offsets([models])[models])
        self.open: set[str] = set()

    def unanswered(self) -> bool:
        for envelope in decode_batch(self.consumer.consume(1_000, 0.1))[0]:
            event = envelope.payload
            if not isinstance(event, ModelEvent) or event.stream != self.stream:
                continue
            if event.action == "retrain_requested":
                self.open.add(envelope.id)
            elif event.action == "challenger_trained":
                self.open.discard(event.evidence.get("request", ""))
        return bool(self.open)

    def wait(self, seconds: float) -> None:
        """Hold the stream while a request is unanswered, at most ``seconds``; then forget it
        (a trainer skips a request that a race or a newer champion made stale)."""
        deadline = time.monotonic() + seconds
        while self.unanswered() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.open.clear()


def learned(runtime: Runtime, stream: str) -> int:
    """Labels the learner has learned, as of its last shared metrics."""
    raw = runtime.store.get(f"meander:{stream}:metrics")
    return 0 if raw is None else int(orjson.loads(raw)["labels"])


def decoded(messages: list[Message], stream: str) -> list[tuple[str, Any]]:
    """(CloudEvents id, payload) of the messages about ``stream`` on a shared topic; fails on
    one that no reader would accept."""
    envelopes, rejected = decode_batch(messages)
    ours = [(m.value, reason) for m, reason in rejected if m.key == stream.encode()]
    assert not ours, f"unreadable events about {stream}: {ours[:3]}"
    return [(e.id, e.payload) for e in envelopes if getattr(e.payload, "stream", None) == stream]


def accuracy(served: dict[str, Any], samples: Sequence[Sample]) -> float:
    right = sum(1 for sample in samples if served[sample.event_id] == sample.label)
    return right / len(samples)


@pytest.mark.integration
def test_the_loop_closes_itself_on_kafka_and_redis(
    stream_name: str,
    real_settings: Callable[..., Settings],
    write_config: Callable[..., Path],
    run_component: Callable[..., Any],
    read_all: Callable[..., list[Message]],
    wait_for: Callable[..., Any],
) -> None:
    source = synthetic("sine", drift_every=DRIFT_AT, seed=7)
    stream = source.stream_config(
        stream_name,
        model="tree.HoeffdingTreeClassifier",
        promotion={"min_samples": 200},
        learning={"publish_every": 200, "checkpoint_seconds": 1.0},
        drift={"concept_detector": DETECTOR},
    )
    settings = real_settings(stream)
    config = write_config(stream)
    assert load_settings(config).streams == [stream]
    samples = list(source.samples(EVENTS))
    index = {sample.event_id: sample.index for sample in samples}

    with Runtime.open(settings) as runtime:
        registry = Registry(runtime.store, stream_name, signer_for(settings))
        learner = run_component("learner", config)
        wait_for(registry.champion, "the learner's first champion", timeout=90, children=[learner])
        children = [learner, run_component("predictor", config), run_component("trainer", config)]

        publish_paced(runtime, stream, samples, children, wait_for)
        checkpoints = Checkpoints(runtime, stream)
        final = wait_for(
            lambda: (state := checkpoints.load()) is not None and state.labels == EVENTS and state,
            "a checkpoint after the last label",
            timeout=120,
            children=children,
        )
        for child in children:
            assert child.stop() == 0, f"{child.name} did not exit cleanly:\n{child.output()}"

        predictions = decoded_predictions(read_all(runtime.bus, topics.predictions(stream_name)))
        alerts = decoded(read_all(runtime.bus, topics.ALERTS), stream_name)
        models = decoded(read_all(runtime.bus, topics.MODELS), stream_name)
        champion = registry.champion()
        assert champion is not None
        lineage = registry.lineage(champion)

    # Every event was served once by a champion, whichever version it was.
    champions = Counter(p.event_id for p in predictions if p.role == "champion")
    assert champions == Counter(sample.event_id for sample in samples)
    served = {p.event_id: p.prediction for p in predictions if p.role == "champion"}
    # ... and the learner judged each label by what was served for it (none went unmatched),
    # but for the untrained first champion's answers of None, which are no answer.
    unanswered = sum(1 for prediction in served.values() if prediction is None)
    assert final.served["champion"].report()["n"] == EVENTS - unanswered
    assert not final.join.labelled and not final.counts["rejected_feedback"]

    # The learner saw the change in the champion's error, after it happened.
    drift_alerts = [
        index[a.at_event]
        for _, a in alerts
        if isinstance(a, Alert) and a.kind == "concept_drift" and a.at_event in index
    ]
    assert any(DRIFT_AT <= at < DRIFT_AT + 1_000 for at in drift_alerts), drift_alerts

    # The champion now serving was trained for a retrain request on the champion it replaced,
    # raced, validated by the gate and promoted over it. The request may precede the change: a
    # challenger already racing then keeps racing while it leads (a drift does not end its race),
    # and it learns the new concept as it races.
    by_id = dict(models)
    new, parent = lineage[0], lineage[1]
    assert new.status == "champion" and new.parent == parent.version
    request = by_id[new.cause["request"]]
    assert isinstance(request, ModelEvent) and request.action == "retrain_requested"
    assert request.version == parent.version
    assert new.training["replay"] == request.evidence["replay"]
    actions = defaultdict(list)
    for _, event in models:
        actions[event.action].append(event)
    assert any(e.version == champion for e in actions["challenger_trained"])
    assert any(
        e.version == champion and e.evidence.get("stage") == "gate" for e in actions["validated"]
    )
    assert any(
        e.version == champion and e.previous_version == parent.version for e in actions["promoted"]
    )
    assert not actions["rolled_back"]

    # What was served recovered: the last labels are well above those just after the change.
    just_after = accuracy(served, samples[DRIFT_AT : DRIFT_AT + 300])
    at_the_end = accuracy(served, samples[-1_000:])
    assert at_the_end > max(0.8, just_after + 0.15), (just_after, at_the_end)


def publish_paced(
    runtime: Runtime,
    stream: StreamConfig,
    samples: Sequence[Sample],
    children: Sequence[Any],
    wait_for: Callable[..., Any],
) -> None:
    """Publish chunk by chunk: the events, then (once they are scored) the labels that fell due,
    then wait while a retrain request is unanswered or the learner is far behind. Labels so
    arrive after their predictions, and the loop reacts while the stream still flows, as with a
    live event rate far below what this machine can publish."""
    bus = runtime.bus
    served = Served(bus, stream.name)
    requests = Requests(bus, stream.name)
    publisher = Publisher(stream.name, label_delay=LABEL_DELAY, seed=7)
    try:
        for start in range(0, len(samples), CHUNK):
            chunk = samples[start : start + CHUNK]
            events, labels = publisher.push(chunk)
            bus.publish(events)
            wait_for(
                lambda chunk=chunk: served.covers(chunk),
                f"champion predictions of events {start}-{start + len(chunk) - 1}",
                timeout=90,
                children=children,
            )
            bus.publish(labels)
            requests.wait(TRAINER_GRACE)
            wait_for(
                lambda: learned(runtime, stream.name) >= publisher.published - MAX_LEARNER_LAG,
                f"the learner to come within {MAX_LEARNER_LAG} labels of {publisher.published}",
                timeout=90,
                children=children,
            )
        bus.publish(publisher.flush())
    finally:
        served.consumer.close()
        requests.consumer.close()


def decoded_predictions(messages: list[Message]) -> list[Prediction]:
    envelopes, rejected = decode_batch(messages)
    assert not rejected
    return [e.payload for e in envelopes if isinstance(e.payload, Prediction)]
