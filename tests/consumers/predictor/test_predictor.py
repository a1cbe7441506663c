"""The predictor serves the registry's champion, challengers in shadow; it dead-letters the rest."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from prometheus_client import REGISTRY
from river import linear_model, tree

from meander import topics
from meander.bus import Record, TopicPartition
from meander.component import drain
from meander.config import StreamConfig
from meander.consumers.predictor.predictor import Predictor
from meander.events import DeadLetter, FeatureEvent, Feedback, Prediction, encode
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime

if TYPE_CHECKING:
    from tests.consumers.conftest import MakeRuntime, MakeStream, PublishSamples, ReadTopic


@dataclass
class Serving:
    runtime: Runtime
    stream: StreamConfig
    registry: Registry
    predictor: Predictor


def serve(runtime: Runtime, stream: StreamConfig) -> Serving:
    """A predictor of ``stream`` with its registry."""
    registry = Registry(runtime.store, stream.name, signer_for(runtime.settings))
    return Serving(runtime, stream, registry, Predictor(runtime, stream, batch=50))


@pytest.fixture
def serving(make_stream: MakeStream, make_runtime: MakeRuntime) -> Iterator[Serving]:
    stream = make_stream("s")
    serving = serve(make_runtime(stream), stream)
    yield serving
    serving.predictor.close()


def taught(label: Any) -> tree.HoeffdingTreeClassifier:
    """A tree that has only ever seen ``label``, so it always predicts it."""
    model = tree.HoeffdingTreeClassifier()
    for i in range(5):
        model.learn_one({"x0": float(i), "x1": 1.0, "x2": 2.0}, label)
    return model


def register(serving: Serving, model: Any, *, promote: bool = False) -> int:
    version = serving.registry.register(model, spec="tree.HoeffdingTreeClassifier").version
    if promote:
        serving.registry.promote(version)
    return version


def predictions(serving: Serving, read_topic: ReadTopic) -> list[Prediction]:
    found = read_topic(serving.runtime, topics.predictions(serving.stream.name))
    return [e.payload for e in found if isinstance(e.payload, Prediction)]


def test_without_a_champion_it_waits_and_consumes_nothing(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    published = publish_samples(serving.runtime, serving.stream, 30, labels=False)

    assert serving.predictor.step() == 0
    assert drain([serving.predictor]) == 0
    assert predictions(serving, read_topic) == []

    register(serving, taught(True), promote=True)
    drain([serving.predictor])

    assert Counter(p.event_id for p in predictions(serving, read_topic)) == Counter(
        s.event_id for s in published.samples
    )


def test_an_untrained_first_champion_is_served_before_any_model_was_published(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    register(serving, tree.HoeffdingTreeClassifier(), promote=True)
    publish_samples(serving.runtime, serving.stream, 20, labels=False)

    drain([serving.predictor])

    # Nothing has learned anywhere yet: None is all the stream can answer, and it is said.
    assert [p.prediction for p in predictions(serving, read_topic)] == [None] * 20


def test_once_a_model_was_published_a_champion_that_answers_nothing_holds_the_events(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    retired = register(serving, taught(True), promote=True)
    serving.registry.save(retired, taught(True))  # a model that learned was published
    fresh = register(serving, tree.HoeffdingTreeClassifier(), promote=True)
    published = publish_samples(serving.runtime, serving.stream, 30, labels=False)

    assert drain([serving.predictor]) == 0
    assert predictions(serving, read_topic) == []

    serving.registry.save(fresh, taught(False))  # the champion learned
    drain([serving.predictor])

    served = predictions(serving, read_topic)
    assert sorted(p.event_id for p in served) == sorted(s.event_id for s in published.samples)
    assert {(p.version, p.prediction) for p in served} == {(fresh, False)}
    assert drain([serving.predictor]) == 0  # committed once served, not before


def test_every_event_gets_exactly_one_champion_prediction(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    champion = register(serving, taught(True), promote=True)
    published = publish_samples(serving.runtime, serving.stream, 300, labels=False)

    handled = drain([serving.predictor])

    served = predictions(serving, read_topic)
    assert handled == 300 and serving.predictor.scored == 300
    assert sorted(p.event_id for p in served) == sorted(s.event_id for s in published.samples)
    assert {(p.version, p.role, p.model, p.prediction) for p in served} == {
        (champion, "champion", "s", True)
    }
    assert all(p.probabilities == {"True": 1.0} and p.latency_ms >= 0 for p in served)
    assert all(p.event_time is not None for p in served)
    assert drain([serving.predictor]) == 0  # committed: nothing is scored twice


def test_challengers_are_scored_in_shadow_next_to_the_champion(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    champion = register(serving, taught(True), promote=True)
    challengers = [register(serving, taught(False)) for _ in range(2)]
    for challenger in challengers:
        serving.registry.add_challenger(challenger)
    publish_samples(serving.runtime, serving.stream, 40, labels=False)

    drain([serving.predictor])

    served = predictions(serving, read_topic)
    per_event = Counter((p.event_id, p.version, p.role, p.prediction) for p in served)
    assert set(per_event.values()) == {1}
    assert Counter((p.version, p.role, p.prediction) for p in served) == {
        (champion, "champion", True): 40,
        (challengers[0], "challenger", False): 40,
        (challengers[1], "challenger", False): 40,
    }


def feed(serving: Serving, publish_samples: PublishSamples, start: int) -> set[str]:
    """Publish and score 20 events; their ids."""
    published = publish_samples(serving.runtime, serving.stream, 20, start=start, labels=False)
    drain([serving.predictor])
    return {s.event_id for s in published.samples}


def test_a_new_revision_of_the_champion_serves_from_the_next_batch(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    champion = register(serving, taught(True), promote=True)
    before = feed(serving, publish_samples, start=0)

    serving.registry.save(champion, taught(False))
    after = feed(serving, publish_samples, start=20)

    answers = {p.event_id: (p.version, p.prediction) for p in predictions(serving, read_topic)}
    assert {answers[i] for i in before} == {(champion, True)}
    assert {answers[i] for i in after} == {(champion, False)}


def test_a_paced_predictor_sees_a_new_revision_once_refresh_every_has_passed(
    serving: Serving,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("meander.consumers.predictor.predictor.time.monotonic", lambda: clock[0])
    serving.predictor.close()  # the same group: its partitions go to the paced one
    serving.predictor = Predictor(serving.runtime, serving.stream, batch=50, refresh_every=1.0)
    champion = register(serving, taught(True), promote=True)
    before = feed(serving, publish_samples, start=0)

    serving.registry.save(champion, taught(False))
    clock[0] += 0.9  # within the second: the registry is not asked again
    within = feed(serving, publish_samples, start=20)
    clock[0] += 0.1
    after = feed(serving, publish_samples, start=40)
    serving.predictor.close()

    answers = {p.event_id: p.prediction for p in predictions(serving, read_topic)}
    assert {answers[i] for i in before | within} == {True}
    assert {answers[i] for i in after} == {False}


def test_a_promotion_serves_the_new_champion_from_the_next_batch(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    old = register(serving, taught(True), promote=True)
    new = register(serving, taught(False))
    serving.registry.add_challenger(new)
    before = feed(serving, publish_samples, start=0)

    serving.registry.promote(new)
    after = feed(serving, publish_samples, start=20)

    served = predictions(serving, read_topic)
    assert {(p.version, p.role) for p in served if p.event_id in before} == {
        (old, "champion"),
        (new, "challenger"),
    }
    assert {(p.version, p.role, p.prediction) for p in served if p.event_id in after} == {
        (new, "champion", False)
    }
    assert serving.predictor.lineup.challengers == () and set(serving.predictor.lineup.models) == {
        new
    }


def test_a_revision_that_cannot_be_loaded_leaves_the_copy_being_served(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    champion = register(serving, taught(True), promote=True)
    feed(serving, publish_samples, start=0)
    serving.registry.save(champion, taught(False))
    serving.runtime.store.set(f"meander:registry:s:blob:{champion}", b"planted pickle")

    after = feed(serving, publish_samples, start=20)

    served = predictions(serving, read_topic)
    assert {p.prediction for p in served if p.event_id in after} == {True}


def test_what_changed_since_the_last_batch_is_loaded_in_one_round_trip_and_a_bad_blob_alone_fails(
    serving: Serving,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    champion = register(serving, taught(True), promote=True)
    challengers = [register(serving, taught(True)) for _ in range(2)]
    for challenger in challengers:
        serving.registry.add_challenger(challenger)
    feed(serving, publish_samples, start=0)
    loads: list[list[int]] = []
    load_many = serving.registry.load_many

    def counted(versions: list[int]) -> dict[int, tuple[Any, int]]:
        loads.append(list(versions))
        return load_many(versions)

    monkeypatch.setattr(serving.predictor.registry, "load_many", counted)
    for version in (champion, *challengers):
        serving.registry.save(version, taught(False))
    feed(serving, publish_samples, start=20)
    assert loads == [[champion, *challengers]]

    # A new revision of each, one of them unreadable: the others still load, one by one.
    for version in (champion, *challengers):
        serving.registry.save(version, taught(True))
    serving.runtime.store.set(f"meander:registry:s:blob:{challengers[0]}", b"planted pickle")
    after = feed(serving, publish_samples, start=40)

    served = predictions(serving, read_topic)
    answers = {(p.version, p.prediction) for p in served if p.event_id in after}
    assert answers == {(champion, True), (challengers[0], False), (challengers[1], True)}


def dead_letters(serving: Serving, read_topic: ReadTopic) -> list[DeadLetter]:
    found = read_topic(serving.runtime, topics.DEADLETTER)
    return [e.payload for e in found if isinstance(e.payload, DeadLetter)]


def test_what_cannot_be_scored_is_dead_lettered_with_the_reason_and_the_rest_is_served(
    serving: Serving, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    register(serving, taught(True), promote=True)
    events = topics.events("s")
    good = {"x0": 1.0, "x1": 2.0, "x2": 3.0}
    bad = [
        Record(events, b"plain bytes, no headers", partition=0),
        encode(events, Feedback(event_id="g1", label=True), source="/test"),
        encode(events, FeatureEvent(id="b1", features={"x0": 1.0, "x1": 2.0}), source="/test"),
        encode(events, FeatureEvent(id="b2", features={**good, "x9": 1.0}), source="/test"),
        encode(events, FeatureEvent(id="b3", features={**good, "x2": "three"}), source="/test"),
    ]
    first, last = (
        encode(events, FeatureEvent(id=i, features=good), source="/test") for i in ("g1", "g2")
    )
    serving.runtime.bus.publish([first, *bad, last])

    drain([serving.predictor])

    assert {p.event_id for p in predictions(serving, read_topic)} == {"g1", "g2"}
    letters = dead_letters(serving, read_topic)
    assert {(d.component, d.topic) for d in letters} == {("predictor", events)}
    reasons = sorted(d.reason for d in letters)
    assert len(reasons) == len(bad) and serving.predictor.dead.count == len(bad)
    assert any(
        r.startswith("not JSON (") and "send a JSON object of features" in r for r in reasons
    )
    assert any(
        f"expected {FeatureEvent.type} on {events}, got {Feedback.type}" in r for r in reasons
    )
    assert any("feature 'x2' is required" in r for r in reasons)
    assert any("unknown feature 'x9'" in r for r in reasons)
    assert any("'x2'" in r and "three" in r for r in reasons)
    assert b"plain bytes, no headers" in {d.original_value() for d in letters}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def lag(topic: str, partition: int) -> float | None:
    labels = {"component": "predictor", "topic": topic, "partition": str(partition)}
    found: float | None = REGISTRY.get_sample_value("meander_consumer_lag", labels)
    return found


def test_predictions_are_counted_and_timed_per_role_and_lag_is_sampled(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    name = f"metered{uuid.uuid4().hex[:8]}"
    stream = make_stream(name, partitions=2)
    runtime = make_runtime(stream)
    serving = serve(runtime, stream)
    register(serving, taught(True), promote=True)
    serving.registry.add_challenger(register(serving, taught(False)))
    figures = {
        "champion": ("meander_predictions_total", {"stream": name, "role": "champion"}),
        "challenger": ("meander_predictions_total", {"stream": name, "role": "challenger"}),
        "model_time": ("meander_prediction_latency_seconds_count", {"stream": name}),
        "end_to_end": ("meander_end_to_end_latency_seconds_count", {"stream": name}),
    }
    before = {key: metric(n, **labels) for key, (n, labels) in figures.items()}
    publish_samples(runtime, stream, 120, labels=False)
    serving.predictor.lag.every = 0.0  # sample at every step

    serving.predictor.step()  # samples first, then reads one batch
    waiting = [lag(f"{name}.events", p) for p in (0, 1)]
    drain([serving.predictor])

    done = {key: metric(n, **labels) - before[key] for key, (n, labels) in figures.items()}
    # One model time per prediction, one end-to-end time per event (its champion answer).
    assert done == {"champion": 120, "challenger": 120, "model_time": 240, "end_to_end": 120}
    assert sum(w or 0.0 for w in waiting) == 120
    serving.predictor.step()
    assert [lag(f"{name}.events", p) for p in (0, 1)] == [0.0, 0.0]
    serving.predictor.close()
    assert lag(f"{name}.events", 0) is None  # a closed predictor reads nothing any more


def test_what_is_dead_lettered_is_counted_by_the_class_of_its_reason(serving: Serving) -> None:
    register(serving, taught(True), promote=True)
    events = topics.events("s")
    good = {"x0": 1.0, "x1": 2.0, "x2": 3.0}
    bad = [
        Record(events, b"plain bytes, no headers", partition=0),
        encode(events, Feedback(event_id="g1", label=True), source="/test"),
        encode(events, FeatureEvent(id="b1", features={**good, "x9": 1.0}), source="/test"),
        encode(events, FeatureEvent(id="b2", features={**good, "x2": "three"}), source="/test"),
    ]

    def dead() -> dict[str, float]:
        return {
            c: metric("meander_deadletters_total", component="predictor", reason=c)
            for c in ("undecodable", "contract", "schema")
        }

    before = dead()
    serving.runtime.bus.publish(bad)
    drain([serving.predictor])

    after = dead()
    assert {c: after[c] - before[c] for c in after} == {
        "undecodable": 1,
        "contract": 1,
        "schema": 2,
    }


def test_an_event_the_champion_cannot_score_is_dead_lettered_and_the_rest_served(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    # The schema lets a categorical feature without categories take any value, but a tree
    # that split on it as a number cannot compare a string with its threshold.
    stream = StreamConfig(
        name=f"odd{uuid.uuid4().hex[:6]}",
        task="binary",
        features={"size": {"type": "categorical"}},
    )
    runtime = make_runtime(stream)
    model = tree.HoeffdingTreeClassifier(grace_period=10)
    for size in range(300):
        model.learn_one({"size": size}, size > 150)
    registry = Registry(runtime.store, stream.name, signer_for(runtime.settings))
    registry.promote(registry.register(model, spec="tree.HoeffdingTreeClassifier").version)
    with pytest.raises(TypeError):
        model.predict_proba_one({"size": "large"})
    sizes: list[Any] = [10, "large", 200] * 10
    runtime.bus.publish(
        [
            encode(
                topics.events(stream.name),
                FeatureEvent(id=f"e{n}", features={"size": size}),
                source="/test",
            )
            for n, size in enumerate(sizes)
        ]
    )
    predictor = Predictor(runtime, stream)
    try:
        drain([predictor])
    finally:
        predictor.close()

    served = read_topic(runtime, topics.predictions(stream.name))
    dead = read_topic(runtime, topics.DEADLETTER)
    assert len(served) == 20 and len(dead) == 10
    reasons = {letter.payload.reason for letter in dead}  # type: ignore[attr-defined]
    assert len(reasons) == 1
    assert reasons.pop().startswith("model v1 cannot score this event: TypeError")
    assert predictor.handled == 30  # everything was read and committed: nothing stalls


def test_a_flat_json_event_that_does_not_fit_says_which_encoding_setting_to_change(
    make_stream: MakeStream, make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    """The stream's schema has x0, x1, x2: read as a flat object of features, an id field
    with no setting naming it is an unknown feature, and the reason names the setting."""
    plain = make_stream("plain")
    named = make_stream("named", encoding={"id_field": "order_id"})
    runtime = make_runtime(plain, named)
    row = {"order_id": "o-1", "x0": 1.0, "x1": 2.0, "x2": 3.0}
    for stream in (plain, named):
        serving = serve(runtime, stream)
        register(serving, taught(True), promote=True)
        runtime.bus.publish([Record(topics.events(stream.name), orjson.dumps(row))])
        drain([serving.predictor])
        serving.predictor.close()

    [letter] = [
        e.payload
        for e in read_topic(runtime, topics.DEADLETTER)
        if isinstance(e.payload, DeadLetter)
    ]
    assert letter.topic == topics.events("plain")
    assert letter.reason.startswith("unknown feature 'order_id'; the schema has: x0, x1, x2")
    assert "streams.plain.encoding.id_field and time_field" in letter.reason
    served = read_topic(runtime, topics.predictions("named"))
    assert [e.payload.event_id for e in served] == ["o-1"]  # type: ignore[attr-defined]


def test_a_stream_may_ask_for_plain_json_predictions(
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
) -> None:
    stream = make_stream("s", encoding={"predictions": "json"})
    runtime = make_runtime(stream)
    serving = serve(runtime, stream)
    register(serving, taught(True), promote=True)
    published = publish_samples(runtime, stream, 20, labels=False)

    drain([serving.predictor])
    serving.predictor.close()

    topic = topics.predictions("s")
    partitions = [TopicPartition(topic, p) for p in range(runtime.bus.partitions(topic))]
    with runtime.bus.assign(partitions) as reader:
        records = reader.consume(1_000, 0.0)
    assert len(records) == 20 and all(m.headers == () for m in records)
    assert all(m.key == orjson.loads(m.value)["event_id"].encode() for m in records)
    served = read_topic(runtime, topic)  # plain JSON on S.predictions decodes as predictions
    assert {e.encoding for e in served} == {"json"}
    assert sorted(p.event_id for p in predictions(serving, read_topic)) == sorted(
        s.event_id for s in published.samples
    )


def test_exactly_once_commits_each_batch_with_its_predictions_and_dead_letters(
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
) -> None:
    stream = make_stream("s")
    runtime = make_runtime(stream, processing_guarantee="exactly_once")
    registry = Registry(runtime.store, stream.name, signer_for(runtime.settings))
    registry.promote(registry.register(taught(True), spec="tree.HoeffdingTreeClassifier").version)
    published = publish_samples(runtime, stream, 120, labels=False)
    runtime.bus.publish([Record(topics.events("s"), b"plain bytes, no headers", partition=0)])
    predictor = Predictor(runtime, stream, batch=50)
    try:
        assert predictor.transactions is not None
        drain([predictor])
        found = read_topic(runtime, topics.predictions("s"))
        served = [e.payload for e in found if isinstance(e.payload, Prediction)]
        assert sorted(p.event_id for p in served) == sorted(s.event_id for s in published.samples)
        assert len(read_topic(runtime, topics.DEADLETTER)) == predictor.dead.count == 1
        # Every event read, and its offset committed by the transactions (not by InFlight).
        ends = {p: predictor.consumer.position(p) for p in predictor.consumer.assignment()}
        assert {p: predictor.consumer.committed(p) for p in ends} == ends
        assert sum(ends.values()) == 121 and len(predictor.in_flight) == 0
    finally:
        predictor.close()


def test_exactly_once_prepares_its_transactions_before_reading_a_batch(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    stream = make_stream("s")
    runtime = make_runtime(stream, processing_guarantee="exactly_once")
    registry = Registry(runtime.store, stream.name, signer_for(runtime.settings))
    registry.promote(registry.register(taught(True), spec="tree.HoeffdingTreeClassifier").version)
    publish_samples(runtime, stream, 10, labels=False)
    predictor = Predictor(runtime, stream)
    calls: list[str] = []
    transactions, consumer = predictor.transactions, predictor.consumer
    assert transactions is not None
    for owner, name in (transactions, "prepare"), (consumer, "consume"), (transactions, "publish"):
        setattr(owner, name, recorded(calls, name, getattr(owner, name)))
    try:
        assert predictor.step(1.0) == 10
        assert calls == ["prepare", "consume", "publish"]
        assert predictor.step(0.0) == 0  # once: later producers start in publish, as ever
        assert calls == ["prepare", "consume", "publish", "consume"]
    finally:
        predictor.close()


def recorded(calls: list[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, noting its ``name`` in ``calls`` each time it is called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return method(*args, **kwargs)

    return call


def diverged_regressor() -> Any:
    """A linear regression with too large a step on unscaled numbers, left to learn until its
    weights overflow: from then on it answers -inf or NaN for every event."""
    from river import linear_model, optim

    model = linear_model.LinearRegression(optimizer=optim.SGD(0.1), clip_gradient=1e300)
    for day in range(60):
        model.learn_one({"day": 736_389.0 + day, "poll": 43.8}, 43.7)
    assert not math.isfinite(model.predict_one({"day": 736_500.0, "poll": 43.8}))
    return model


def publish_polls(runtime: Runtime, stream: StreamConfig, count: int) -> None:
    runtime.bus.publish(
        [
            encode(
                topics.events(stream.name),
                FeatureEvent(id=f"e{n}", features={"day": 736_400.0 + n, "poll": 44.0}),
                source="/test",
            )
            for n in range(count)
        ]
    )


@pytest.mark.parametrize("count", [30, 300], ids=["one by one", "as a batch"])  # 256+: *_many
@pytest.mark.parametrize("diverged", ["champion", "challenger"])
def test_a_diverged_model_serves_no_answer_that_is_not_a_number(
    make_runtime: MakeRuntime, read_topic: ReadTopic, count: int, diverged: str
) -> None:
    # Published, a NaN or an infinity is JSON's null: the prediction index and the learner
    # refused such predictions. A diverged champion's events are dead-lettered with the
    # reason (as when it raises), a diverged challenger has no shadow prediction.
    stream = StreamConfig(
        name=f"poll{uuid.uuid4().hex[:6]}",
        task="regression",
        features={"day": "numeric", "poll": "numeric"},
        model="linear_model.LinearRegression",
    )
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, stream.name, signer_for(runtime.settings))
    sane = linear_model.LinearRegression()
    sane.learn_one({"day": 1.0, "poll": 43.8}, 43.7)
    models = (
        (diverged_regressor(), sane) if diverged == "champion" else (sane, diverged_regressor())
    )
    champion, challenger = (
        registry.register(m, spec="linear_model.LinearRegression") for m in models
    )
    registry.promote(champion.version)
    registry.add_challenger(challenger.version, reason="test")
    publish_polls(runtime, stream, count)
    predictor = Predictor(runtime, stream, batch=count)
    try:
        drain([predictor])
    finally:
        predictor.close()

    served = [e.payload for e in read_topic(runtime, topics.predictions(stream.name))]
    dead = [e.payload for e in read_topic(runtime, topics.DEADLETTER)]
    assert predictor.handled == count  # read and committed: nothing waits for a new revision
    if diverged == "challenger":
        assert not dead and [p.role for p in served] == ["champion"] * count  # type: ignore[union-attr]
        assert all(math.isfinite(p.prediction) for p in served)  # type: ignore[union-attr]
        return
    assert not served and len(dead) == count  # nothing served for them, in shadow neither
    assert {letter.reason for letter in dead} == {  # type: ignore[union-attr]
        f"model v{champion.version} cannot score this event: it answered -inf: it has diverged"
    }
