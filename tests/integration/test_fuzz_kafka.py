"""Property-based fuzzing of every topic a component reads, on real Kafka and Redis.

One stream and one set of real components (predictor, monitor, learner, trainer, notifier and
the service's prediction index), stepped in this process, for the whole suite. Each hypothesis
example writes records to ``S.events``, ``S.feedback``, ``S.predictions``, ``meander.models``
and ``meander.alerts`` the way other Kafka clients do (kafka-python, and kcat for what
kafka-python cannot write: headers with a null value, header names that are not UTF-8), good
ones among hostile and broken ones (:mod:`tests.integration.fuzz_records`), steps each
component until it has read everything, and checks:

- no component step fails (the steps run here: an exception fails the example);
- every bad record is on ``meander.deadletter`` once, from the component that reads it, with a
  reason of the expected class, and counted in ``meander_deadletters_total``; no good one is;
- every good event gets one champion prediction per copy: the one the champion gives it alone;
- the learner learns the good labels and only them, in order: its model, its metrics and its
  label count are those of the same model given the good labels alone;
- the monitor sees every event once.

The champion stays the same (the learner shares no model, no drift detector fires, the gate
never decides), so "as it would be without the bad records" can be computed here.
"""

from __future__ import annotations

import copy
import subprocess
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from prometheus_client import REGISTRY
from river import tree

from meander import topics
from meander.bus import Consumer, TopicPartition
from meander.component import Component
from meander.config import Settings, StreamConfig
from meander.consumers.learner import Learner
from meander.consumers.monitor import Monitor
from meander.consumers.notifier import Notifier
from meander.consumers.predictor import Predictor
from meander.consumers.trainer import Trainer
from meander.events import DeadLetter, Envelope, Prediction, decode_batch
from meander.models.evaluation import Prequential
from meander.models.inference import predict_one
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime
from meander.services.index import PredictionIndex
from meander.telemetry import dead_letter_reason
from tests.adversarial import OTHER_THREADS_USE_RANDOM
from tests.integration.conftest import SIGNING_KEY
from tests.integration.fuzz_records import (
    ALERTS,
    EVENTS,
    FEEDBACK,
    MODELS,
    PREDICTIONS,
    Case,
    Intent,
    Oracle,
    intents,
    materialize,
)

pytestmark = [
    pytest.mark.integration,
    # A failing example is shown whole, however large: what it was matters more than its size.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    OTHER_THREADS_USE_RANDOM,
]

EXAMPLES = 65  # hypothesis examples of MIN_INTENTS..MAX_INTENTS intents, ~2.5 records each
MIN_INTENTS, MAX_INTENTS = 50, 110
MAX_EVENT_BYTES = 8_000
SPEC = "tree.HoeffdingTreeClassifier(grace_period=20)"
PROBES = [{"amount": a, "country": c} for a in (0.0, 10.0, 5e5) for c in ("NL", "FR")]
PREDICTOR = "/meander/predictor"  # the source of the predictions predictors write
STEP_BOUND = 90.0  # seconds each component has to read an example


@dataclass
class World:
    """The suite's stream, components and oracle, and readers of what they wrote."""

    runtime: Runtime
    stream: StreamConfig
    producer: KafkaProducer
    bootstrap: str
    predictor: Predictor
    monitor: Monitor
    learner: Learner
    trainer: Trainer
    notifier: Notifier
    index: PredictionIndex
    oracle: Oracle
    readers: dict[str, Consumer]
    events: int = 0
    records: int = 0
    examples: int = 0
    failure: str = ""

    def topic(self, name: str) -> str:
        stream = self.stream.name
        kinds = {EVENTS: topics.events, FEEDBACK: topics.feedback, PREDICTIONS: topics.predictions}
        return kinds[name](stream) if name in kinds else name

    def end(self, topic: str) -> int:
        partition = TopicPartition(topic, 0)
        return self.readers[topics.DEADLETTER].end_offsets([partition])[partition]

    def write(self, cases: list[Case]) -> list[tuple[str, int]]:
        """Write ``cases`` in order, one partition per topic; where each one landed."""
        ends = {name: self.end(self.topic(name)) for name in {c.topic for c in cases}}
        where: list[tuple[str, int]] = []
        for case in cases:
            topic = self.topic(case.topic)
            where.append((topic, ends[case.topic]))
            ends[case.topic] += 1
            if case.kcat is None:
                self.producer.send(
                    topic,
                    value=case.value,
                    key=case.key or b"k",  # kafka-python sends no record with neither
                    headers=case.headers,
                    partition=0,
                    timestamp_ms=case.timestamp_ms,
                )
                continue
            self.producer.flush()  # kcat's record goes after the ones before it
            command = ["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-p", "0", "-D", "\x1e"]
            command += [arg for header in case.kcat for arg in ("-H", header)]
            subprocess.run(command, input=(case.value or b"") + b"\x1e", check=True)
        self.producer.flush()
        for name, end in ends.items():
            assert self.end(self.topic(name)) == end, f"{name}: records landed elsewhere"
        return where

    def run_until(self, work: list[tuple[Component, Callable[[], bool]]], what: str) -> None:
        """Step each component (a step that raises fails the example) until its condition
        holds; one that has read everything is not stepped again for nothing."""
        deadline = time.monotonic() + STEP_BOUND
        while work:
            assert time.monotonic() < deadline, f"{what}: not done within {STEP_BOUND:g} s"
            for component, _ in work:
                component.step(0.02)
            work = [(component, done) for component, done in work if not done()]

    def committed(self, consumer: Consumer, *names: str) -> bool:
        """Whether ``consumer``'s group committed every record of ``names`` so far."""
        partitions = [TopicPartition(name, 0) for name in names]
        ends = consumer.end_offsets(partitions)
        return all((consumer.committed(p) or 0) == ends[p] for p in partitions)

    def read(self, topic: str) -> list[Envelope]:
        """What ``topic`` got since the last read."""
        reader, partition = self.readers[topic], TopicPartition(topic, 0)
        end = reader.end_offsets([partition])[partition]
        found, deadline = [], time.monotonic() + 30
        while reader.position(partition) < end and time.monotonic() < deadline:
            found += reader.consume(5_000, 0.1)
        return decode_batch(found)[0]


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, redis_url: str) -> Iterator[World]:
    stream = StreamConfig(
        name=f"fuzz{uuid.uuid4().hex[:8]}",
        task="binary",
        features={
            "amount": {"type": "numeric", "minimum": 0, "maximum": 1e6},
            "country": {"type": "categorical", "categories": ["NL", "FR"], "required": False},
            "vip": {"type": "boolean", "required": False},
        },
        model=SPEC,
        partitions=1,
        drift={"concept_detector": "drift.PageHinkley(threshold=1e12)", "data_window": 400},
        promotion={"min_samples": 10**6},
        # A label of an unknown event is dead-lettered at once: none waits for its event
        # (tests/consumers/learner/test_learner.py holds labels that come before their event).
        label_window={"ttl_seconds": 10**7, "max_pending": 10**7, "hold_seconds": 0},
        learning={
            "publish_every": 10**9,
            "publish_seconds": 10**6,
            "checkpoint_every": 10**9,
            "checkpoint_seconds": 10**6,
        },
    )
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        # A database of its own: webhook subscriptions other tests made are not this notifier's.
        redis_url=redis_url.rsplit("/", 1)[0] + "/13",
        model_signing_key=SIGNING_KEY,
        max_event_bytes=MAX_EVENT_BYTES,
        streams=[stream],
    )
    with Runtime.open(settings) as runtime:
        champion = tree.HoeffdingTreeClassifier(grace_period=20)
        for i in range(50):
            champion.learn_one({"amount": float(i * 1000), "country": "NL"}, i % 3 == 0)
        registry = Registry(runtime.store, stream.name, signer_for(settings))
        registry.promote(registry.register(champion, spec=SPEC).version)
        oracle = Oracle(
            stream, champion, copy.deepcopy(champion), Prequential("binary"), MAX_EVENT_BYTES
        )
        readers = {
            name: runtime.bus.assign([TopicPartition(name, 0)])
            for name in (topics.DEADLETTER, topics.predictions(stream.name))
        }
        suffix = uuid.uuid4().hex[:8]
        built = World(
            runtime,
            stream,
            KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5),
            kafka_bootstrap,
            Predictor(runtime, stream, batch=200),  # one event at a time: River's *_many differs
            Monitor(runtime, stream),
            Learner(runtime, stream),
            Trainer(runtime, stream),
            Notifier(runtime, group=f"fuzz-notifier-{suffix}"),
            PredictionIndex(runtime, group=f"fuzz-index-{suffix}"),
            oracle,
            readers,
        )
        built.learner.step(0.1)  # it takes the stream, and follows meander.models from here
        # What the shared topics held before the suite is read (and judged) before it starts.
        built.run_until(
            [
                (built.notifier, lambda: built.committed(built.notifier.consumer, MODELS, ALERTS)),
                (built.trainer, lambda: built.committed(built.trainer.consumer, MODELS)),
            ],
            "the warm-up",
        )
        for name, reader in readers.items():
            reader.seek(TopicPartition(name, 0), built.end(name))
        try:
            yield built
        finally:
            for component in (built.predictor, built.monitor, built.learner, built.trainer):
                component.close()
            built.notifier.close()
            built.index.close()
            built.producer.close()
            for reader in readers.values():
                reader.close()


@given(st.lists(intents, min_size=MIN_INTENTS, max_size=MAX_INTENTS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # The world outlives an example: a replay (to shrink, or to show a failure) runs in a world
    # the failure changed, so the first failure is the one reported, whole.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
def test_bad_records_cost_only_themselves(world: World, drawn: list[Intent]) -> None:
    if world.failure:
        pytest.fail(world.failure, pytrace=False)
    try:
        check_example(world, drawn)
    except Exception:
        world.failure = traceback.format_exc(limit=-6)  # where it failed, when shown again
        raise


def check_example(world: World, drawn: list[Intent]) -> None:
    registry = Registry(world.runtime.store, world.stream.name, signer_for(world.runtime.settings))
    world.oracle.champion = registry.load(registry.heads().champion or 1)[0]
    cases = materialize(drawn, world.oracle)
    counted = dead_letters_counted()
    taken, models_end = world.learner.handled_labels, world.end(MODELS)
    events = [c for c in cases if c.topic == EVENTS]
    rest = [c for c in cases if c.topic != EVENTS]

    # Events first, read by the predictor and the monitor; then what the learner reads, so
    # that each label finds its event's prediction already joined, as it usually does.
    where = world.write(events)
    events_topic = world.topic(EVENTS)
    world.run_until(
        [
            (world.predictor, lambda: world.committed(world.predictor.consumer, events_topic)),
            (world.monitor, lambda: world.committed(world.monitor.consumer, events_topic)),
        ],
        "the predictor and the monitor",
    )
    where += world.write(rest)
    labels, models_end = taken + sum(c.topic == FEEDBACK for c in cases), world.end(MODELS)
    followed = TopicPartition(MODELS, 0)
    world.run_until(
        [
            (
                world.learner,
                lambda: (
                    world.learner.handled_labels >= labels
                    and world.learner._readers.models.offsets()[followed] >= models_end
                ),
            ),
            (world.trainer, lambda: world.committed(world.trainer.consumer, MODELS)),
            (world.notifier, lambda: world.committed(world.notifier.consumer, MODELS, ALERTS)),
            (world.index, lambda: world.committed(world.index.consumer, world.topic(PREDICTIONS))),
        ],
        "the learner, trainer, notifier and index",
    )
    check_dead_letters(world, events + rest, where, counted)
    check_served(world, events)
    check_learned(world)
    world.events += len(events)
    assert world.monitor.events + world.monitor.window.events == world.events
    world.records += len(cases)
    world.examples += 1


def check_dead_letters(
    world: World, cases: list[Case], where: list[tuple[str, int]], counted: float
) -> None:
    """Every bad record once on the dead-letter topic, from its reader, for the right reason."""
    letters = [e.payload for e in world.read(topics.DEADLETTER)]
    letters = [d for d in letters if isinstance(d, DeadLetter)]
    found = Counter((d.topic, d.offset, d.component) for d in letters)
    wanted = Counter(
        (*place, case.bad) for case, place in zip(cases, where, strict=True) if case.bad
    )
    unwanted = [d for d in letters if (d.topic, d.offset, d.component) not in wanted]
    assert found == wanted, [(d.topic, d.offset, d.component, d.reason) for d in unwanted[:3]]
    reasons = {(d.topic, d.offset): d.reason for d in letters}
    for case, place in zip(cases, where, strict=True):
        if case.bad:
            reason = dead_letter_reason(reasons[place])
            assert reason != "other" and reason == (case.reason or reason), (case, reasons[place])
    assert dead_letters_counted() - counted == len(letters)


def check_served(world: World, events: list[Case]) -> None:
    """Every good event served by the champion, once per copy, as it would be alone."""
    champion = world.oracle.champion  # served each event of this example
    served = [
        e.payload
        for e in world.read(topics.predictions(world.stream.name))
        if e.source == PREDICTOR  # not what the suite wrote there itself
    ]
    assert Counter(
        answered(p.event_id, p.prediction, p.probabilities)
        for p in served
        if isinstance(p, Prediction) and p.role == "champion"
    ) == Counter(
        answered(event_id, *predict_one(champion, x, "binary"))
        for event_id, x in (c.event for c in events if c.event is not None)
    )


def check_learned(world: World) -> None:
    """The learner learned the good labels, and only them, in order."""
    state, oracle = world.learner.state, world.oracle
    assert state is not None and state.labels == oracle.labels
    model = state.models[state.champion]
    assert [model.predict_proba_one(x) for x in PROBES] == [
        oracle.model.predict_proba_one(x) for x in PROBES
    ]
    assert state.metrics[state.champion].report() == oracle.metrics.report()


def answered(event_id: str, prediction: Any, probabilities: dict[str, float] | None) -> Any:
    return event_id, prediction, tuple(sorted((probabilities or {}).items()))


def dead_letters_counted() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "meander_deadletters"
        for sample in metric.samples
        if sample.name == "meander_deadletters_total"
    )


def test_the_suite_ran_its_cases(world: World, fuzzed: dict[str, int]) -> None:
    """Every example ran (the summary at the end of the run says how many records)."""
    fuzzed["Kafka records"] = world.records
    assert not world.failure and world.examples == EXAMPLES
