"""A step's labels learned as a batch leave the learner as one label at a time would."""

from __future__ import annotations

import copy
import random
from typing import TYPE_CHECKING, Any

import pytest
from river import drift, tree

from meander import topics
from meander.bus import Message, Record
from meander.component import drain
from meander.config import StreamConfig
from meander.consumers.learner.labels import Labels
from meander.consumers.learner.learner import Learner
from meander.consumers.learner.learning import LearnerState
from meander.consumers.learner.lifecycle import LifecycleNotices
from meander.events import Feedback, ModelEvent, decode, encode
from meander.models.inference import predict_one
from meander.models.registry import Registry
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from tests.conftest import every_message
from tests.consumers.learner.test_learner import learn_stagger, stagger

if TYPE_CHECKING:
    from tests.consumers.conftest import MakeRuntime, MakeStream, ReadTopic


class Fussy(tree.HoeffdingTreeClassifier):  # type: ignore[misc]
    """A tree that refuses to learn an event marked ``refuse``."""

    def learn_one(self, x: dict[str, Any], y: Any, **kwargs: Any) -> None:
        if x.get("refuse"):
            raise ValueError("refused")
        super().learn_one(x, y, **kwargs)


def summary(state: LearnerState, probes: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "labels": state.labels,
        "metrics": {v: m.to_dict() for v, m in state.metrics.items()},
        "served": {k: m.to_dict() for k, m in state.served.items()},
        "races": {k: r.to_dict() for k, r in state.races.items()},
        "detectors": (state.detector.width, state.detector.total, state.warning.width),
        "counts": dict(state.counts),
        "recent": list(state.recent),
        "pending": list(state.join.pending),
        "labelled": list(state.join.labelled),
        "marks": (state.last_event, state.drift_at, state.warned_at, state.error_before),
        "requested": state.retrain_requested_at,
        "predictions": {
            v: [predict_one(m, x, state.task) for x in probes] for v, m in state.models.items()
        },
    }


def story(count: int, seed: int) -> tuple[LearnerState, list[Message]]:
    """A champion, a challenger racing it, ``count`` events with all kinds of served answers
    (none, None, the challenger's or not, one version twice), a concept that flips halfway, and
    their labels as messages, with a few that cannot be learned."""
    rng = random.Random(seed)
    state = LearnerState.start(
        "binary",
        champion=1,
        model=Fussy(grace_period=20),
        detector=drift.ADWIN(),
        ttl_seconds=3_600,
        max_pending=10 * count,
        race_window=50,
    )
    state.add_challenger(2, Fussy(grace_period=40))
    messages = []
    for i in range(count):
        x = {"a": rng.random(), "b": rng.random(), "refuse": i % 97 == 5}
        y = (x["a"] > x["b"]) == (i < count // 2)
        state.join.add_event(f"e{i}", x, timestamp_ms=i, partition=i % 3, offset=i)
        kind = rng.random()
        if kind < 0.7:  # the champion answered: wrong now and then
            answer = y if rng.random() < (0.9 if i < count // 2 else 0.4) else not y
            state.join.add_prediction(
                f"e{i}", version=1, role="champion", prediction=(answer, {"True": 0.7})
            )
        if 0.5 < kind < 0.8:
            state.join.add_prediction(f"e{i}", version=2, role="challenger", prediction=(y, None))
        if 0.6 < kind < 0.65:
            state.join.add_prediction(f"e{i}", version=1, role="shadow", prediction=(None, None))
        if kind > 0.9:
            state.join.add_prediction(f"e{i}", version=1, role="champion", prediction=(None, None))
        label: Any = y if i % 89 != 3 else 0.5  # not a class label
        event = f"e{i}" if i % 83 != 7 else f"unknown-{i}"
        record = encode(topics.feedback("s"), Feedback(event_id=event, label=label), source="/t")
        messages.append(
            Message(record.topic, 0, i, record.key, record.value, record.headers, 1_000_000 + i)
        )
    return state, messages


def labels_for(runtime: Runtime, stream: StreamConfig) -> Labels:
    notices = LifecycleNotices(runtime.bus, stream, Registry.of(runtime, stream))
    return Labels(stream, notices, max_bytes=1_000_000, max_skew=300.0)


def announced(runtime: Runtime, read_topic: ReadTopic) -> list[tuple[str, str]]:
    """What was published on the alerts and the models topics: (id, what)."""
    found = read_topic(runtime, topics.ALERTS) + read_topic(runtime, topics.MODELS)
    return [
        (e.id, f"ModelEvent:{e.payload.action}" if isinstance(e.payload, ModelEvent) else "Alert")
        for e in found
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_batch_of_labels_leaves_the_state_as_one_label_at_a_time(
    make_stream: MakeStream, make_runtime: MakeRuntime, read_topic: ReadTopic, seed: int
) -> None:
    stream = make_stream("s")
    batch, single = make_runtime(stream), make_runtime(stream)
    state, messages = story(1_200, seed)
    alone = copy.deepcopy(state)
    probes = [{"a": i / 10, "b": (i % 7) / 7, "refuse": False} for i in range(10)]

    rejected = labels_for(batch, stream).learn(state, messages)
    one_by_one = labels_for(single, stream)
    rejected_alone = [r for message in messages for r in one_by_one.learn(alone, [message])]

    assert summary(state, probes) == summary(alone, probes)
    assert state.drift_at is not None and state.races  # a drift was found, mid-race
    assert state.counts["unanswered"] > 0 and state.counts["unmatched"] > 0
    assert [(m.offset, why) for m, why in rejected] == [
        (m.offset, why) for m, why in rejected_alone
    ]
    assert {"refused", "not a class label", "is waiting"} <= {
        next(w for w in ("refused", "not a class label", "is waiting") if w in why)
        for _, why in rejected
    }
    assert announced(batch, read_topic) == announced(single, read_topic)
    assert "Alert" in {kind for _, kind in announced(batch, read_topic)}


def test_a_batch_of_labels_learns_as_evaluate_then_learn_per_label(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream = make_stream("s")
    runtime = make_runtime(stream)
    state, messages = story(600, 4)
    reference = copy.deepcopy(state)
    probes = [{"a": i / 10, "b": (i % 7) / 7, "refuse": False} for i in range(10)]
    # Only labels every path learns, so that the reference needs no checks of its own.
    clean = [
        (m, f)
        for m in messages
        if (f := decode(m).payload).label != 0.5  # type: ignore[union-attr]
        and f.event_id in state.join.pending  # type: ignore[union-attr]
        and not state.join.pending[f.event_id].features["refuse"]  # type: ignore[union-attr]
    ]

    labels_for(runtime, stream).learn(state, [m for m, _ in clean])
    for message, feedback in clean:
        entry = reference.join.take(feedback.event_id, feedback.label)
        assert entry is not None
        reference.evaluate(entry.features, feedback.label, entry.served)
        reference.learn(entry.features, feedback.label)
        reference.last_event = feedback.event_id
        reference.recent.append((entry.partition, entry.offset, message.partition, message.offset))

    # The notices (drift_at and the like) are the learner's, not evaluate's: leave them out.
    mine, theirs = summary(state, probes), summary(reference, probes)
    mine.pop("marks"), theirs.pop("marks"), mine.pop("requested"), theirs.pop("requested")
    assert mine == theirs


def copied(source: Runtime, target: Runtime, topic: str) -> None:
    """Every record of ``topic`` on ``source``, published on ``target`` where it was."""
    messages = every_message(source, topic)
    target.bus.publish(
        [
            Record(m.topic, m.value or b"", m.key, m.headers, m.partition, m.timestamp_ms)
            for m in messages
        ]
    )


def test_a_learner_ends_the_same_whatever_the_labels_it_takes_a_step(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    runtime, stream = stagger(make_runtime)
    probes = [s.features for s in synthetic("stagger", seed=99).samples(30)]
    small = Learner(runtime, stream, batch=7)  # as the labels came, a hundred at a time
    learn_stagger(runtime, stream, small)
    assert small.state is not None
    # The same records on a bus of its own (the registry's champion is the first one again).
    elsewhere = make_runtime(stream)
    for topic in (
        topics.events("stagger"),
        topics.predictions("stagger"),
        topics.feedback("stagger"),
    ):
        copied(runtime, elsewhere, topic)
    large = Learner(elsewhere, stream, batch=5_000)  # all at once
    drain([large])

    assert large.state is not None
    assert summary(large.state, probes) == summary(small.state, probes)
    said, again = announced(runtime, read_topic), announced(elsewhere, read_topic)
    assert "Alert" in {kind for _, kind in said} and again == said
