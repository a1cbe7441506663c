"""The metrics contract of issue 5, held against what the components export after a real run.

A short closed loop (producer, predictor, learner, trainer, monitor, notifier) runs on the
embedded backends with some bad events and labels mixed in; the process's registry must then
carry every metric of the contract with its type and label names, count what the components
did, and hold no unbounded label value. The registry is the process's own and other tests
count into it too, so counts are compared before and after, never read as absolute values.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from meander import topics
from meander.bus import Record
from meander.component import drain
from meander.config import StreamConfig
from meander.consumers.loop import Loop
from meander.consumers.notifier.notifier import Notifier
from meander.events import DeadLetter, FeatureEvent, Feedback, encode
from meander.producers.labels import Publisher
from meander.producers.runner import Producer
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.services import create_app
from meander.telemetry import dead_letter_reason, set_model_metrics
from meander.telemetry.metrics import REASONS
from tests.conftest import embedded_runtimes

if TYPE_CHECKING:
    from tests.conftest import MakeRuntime, ReadTopic

# name (as the parser names the family) -> (type, label names): the contract, written out.
CONTRACT: dict[str, tuple[str, set[str]]] = {
    "meander_events_consumed": ("counter", {"component", "stream"}),
    "meander_events_produced": ("counter", {"component", "stream"}),
    "meander_predictions": ("counter", {"stream", "role"}),
    "meander_feedback_joined": ("counter", {"stream"}),
    "meander_feedback_expired": ("counter", {"stream"}),
    "meander_feedback_unmatched": ("counter", {"stream"}),
    "meander_feedback_held": ("gauge", {"stream"}),
    "meander_deadletters": ("counter", {"component", "reason"}),
    "meander_prediction_latency_seconds": ("histogram", {"stream"}),
    "meander_end_to_end_latency_seconds": ("histogram", {"stream"}),
    "meander_batch_size": ("histogram", {"component"}),
    "meander_consumer_lag": ("gauge", {"component", "topic", "partition"}),
    "meander_model_metric": ("gauge", {"stream", "version", "metric"}),
    "meander_served_metric": ("gauge", {"stream", "metric"}),
    "meander_alerts": ("counter", {"stream", "kind", "severity"}),
    "meander_model_decisions": ("counter", {"stream", "action"}),
    "meander_webhook_deliveries": ("counter", {"outcome"}),
    "meander_checkpoint_timestamp_seconds": ("gauge", {"stream"}),
    "meander_http_requests": ("counter", {"method", "route", "status"}),
    "meander_http_request_duration_seconds": ("histogram", {"method", "route"}),
}
EVENTS, CHUNK, BAD_EVENTS, BAD_LABELS = 1_500, 100, 3, 4


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples() -> list[Sample]:
    text = generate_latest(REGISTRY).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


@dataclass
class Run:
    runtime: Runtime
    stream: StreamConfig
    loop: Loop
    event_ids: set[str]
    before: dict[str, float]


def counts(stream: str) -> dict[str, float]:
    """The figures a run changes, by a short name."""
    return {
        "predictor_consumed": value(
            "meander_events_consumed_total", component="predictor", stream=stream
        ),
        "predictor_produced": value(
            "meander_events_produced_total", component="predictor", stream=stream
        ),
        "producer_produced": value(
            "meander_events_produced_total", component="producer", stream=stream
        ),
        "champion": value("meander_predictions_total", stream=stream, role="champion"),
        "challenger": value("meander_predictions_total", stream=stream, role="challenger"),
        "model_time": value("meander_prediction_latency_seconds_count", stream=stream),
        "end_to_end": value("meander_end_to_end_latency_seconds_count", stream=stream),
        "joined": value("meander_feedback_joined_total", stream=stream),
        "unmatched": value("meander_feedback_unmatched_total", stream=stream),
        "learner_consumed": value(
            "meander_events_consumed_total", component="learner", stream=stream
        ),
        "monitor_consumed": value(
            "meander_events_consumed_total", component="monitor", stream=stream
        ),
        "notifier_consumed": value(
            "meander_events_consumed_total", component="notifier", stream=stream
        ),
        "decisions": sum(
            value("meander_model_decisions_total", stream=stream, action=action)
            for action in ("promoted", "retrain_requested", "challenger_trained", "rejected")
        ),
        **{
            f"dead_{reason}": value("meander_deadletters_total", component=component, reason=reason)
            for component, reason in [("predictor", "undecodable"), ("predictor", "schema")]
        },
        "dead_wrong_label": value(
            "meander_deadletters_total", component="learner", reason="wrong_label"
        ),
    }


def through_the_loop(make_runtime: MakeRuntime) -> Iterator[Run]:
    """A drifting Stagger stream through the whole loop, with a few bad events and labels."""
    name = f"tele{uuid.uuid4().hex[:8]}"
    stream = synthetic("stagger").stream_config(
        name,
        model="tree.HoeffdingTreeClassifier",
        promotion={"min_samples": 100},
        learning={"replay_window": 300},
    )
    runtime = make_runtime(stream, producer={"source": "sea", "events": 200, "seed": 11})
    before = counts(name)
    loop = Loop(runtime, stream)
    publisher = Publisher(name, seed=5)
    samples_ = list(synthetic("stagger", drift_every=600, seed=3).samples(EVENTS))
    for start in range(0, EVENTS, CHUNK):
        loop.feed(*publisher.push(samples_[start : start + CHUNK]))
    events = topics.events(name)
    bad_events = [Record(events, b"no headers")] + [
        encode(events, _event(f"bad-{i}", stream), source="/test") for i in range(BAD_EVENTS - 1)
    ]
    # Labels of events the learner read past an hour ago: no use holding them for their event.
    hour_ago = int(time.time() * 1000) - 3_600_000
    unknown = [
        Record(label.topic, label.value, label.key, label.headers, timestamp_ms=hour_ago)
        for label in (
            encode(topics.feedback(name), Feedback(event_id=f"never-{i}", label=True), source="/t")
            for i in range(BAD_LABELS)
        )
    ]
    loop.feed(bad_events, [*unknown, *publisher.flush()])
    loop.learner.checkpoint()
    notifier, producer = Notifier(runtime, group=f"n-{name}"), Producer(runtime)
    drain([notifier, producer])
    TestClient(create_app(runtime.settings, runtime=runtime)).get("/healthz")
    yield Run(runtime, stream, loop, {s.event_id for s in samples_}, before)
    notifier.close()
    loop.close()


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    """One run, for the tests that only read what it left."""
    with embedded_runtimes() as make_runtime:
        yield from through_the_loop(make_runtime)


@pytest.fixture
def own_run(make_runtime: MakeRuntime) -> Iterator[Run]:
    """A run of its own, for a test that changes what the run left."""
    yield from through_the_loop(make_runtime)


def _event(event_id: str, stream: StreamConfig) -> FeatureEvent:
    """An event outside the stream's schema: a feature it does not have."""
    return FeatureEvent(id=event_id, features={**dict.fromkeys(stream.features, 1), "extra": 1})


def test_every_metric_of_the_contract_is_exposed_with_its_type_and_label_names(run: Run) -> None:
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())
    }

    for name, (kind, labels) in CONTRACT.items():
        assert name in families, f"{name} is not exposed"
        family = families[name]
        assert family.type == kind, name
        found = {frozenset(set(s.labels) - {"le"}) for s in family.samples}
        assert found == {frozenset(labels)}, name


def test_a_short_loop_counts_what_each_component_did(run: Run) -> None:
    name = run.stream.name
    now = counts(name)
    done = {key: now[key] - run.before[key] for key in now}
    scored = run.loop.predictor.scored

    assert scored == EVENTS and run.loop.predictor.dead.count == BAD_EVENTS
    assert done["predictor_consumed"] == EVENTS + BAD_EVENTS
    assert done["champion"] == scored
    assert done["predictor_produced"] == done["champion"] + done["challenger"]
    assert done["model_time"] == done["champion"] + done["challenger"]  # one per prediction
    assert done["end_to_end"] == scored  # one per event, when its champion answer is out
    assert done["dead_undecodable"] >= 1 and done["dead_schema"] >= BAD_EVENTS - 1
    assert done["joined"] == run.loop.learner.state.labels  # type: ignore[union-attr]
    assert done["unmatched"] == BAD_LABELS and done["dead_wrong_label"] >= BAD_LABELS
    assert done["learner_consumed"] >= EVENTS  # labels, and the events and predictions joined
    assert done["monitor_consumed"] == EVENTS + BAD_EVENTS
    assert done["decisions"] >= 2  # the first champion's promotion, and what the drift caused
    assert done["notifier_consumed"] >= done["decisions"]
    assert done["producer_produced"] == 200 * 2  # its events, then their labels
    assert value("meander_checkpoint_timestamp_seconds", stream=name) > 1.7e9


def test_no_label_value_is_an_event_id(run: Run) -> None:
    meander = [s for s in samples() if s.name.startswith("meander_")]
    values = {v for s in meander for k, v in s.labels.items() if k != "le"}

    assert not any(event_id in v for v in values for event_id in run.event_ids)
    assert not any(v.startswith(("bad-", "never-")) for v in values)
    reasons = {s.labels["reason"] for s in meander if "reason" in s.labels}
    assert reasons <= set(REASONS)
    lag = {s.labels["partition"] for s in meander if s.name == "meander_consumer_lag"}
    assert lag <= {str(p) for p in range(run.stream.partitions)}


def test_model_figures_are_kept_only_for_live_versions(own_run: Run) -> None:
    run = own_run
    state = run.loop.learner.state
    assert state is not None
    run.loop.learner.checkpoints.publish_models(state)
    name = run.stream.name
    shown = {
        s.labels["version"]
        for s in samples()
        if s.name == "meander_model_metric" and s.labels["stream"] == name
    }

    assert shown and shown <= {str(v) for v in state.models}
    assert value("meander_served_metric", stream=name, metric="accuracy") > 0.5
    run.loop.learner.close()  # it lets go of the stream: what it set here goes with it
    assert not any(s.labels.get("stream") == name and "metric" in s.labels for s in samples())
    assert value("meander_checkpoint_timestamp_seconds", stream=name) == 0.0


def test_many_versions_leave_as_many_series_as_are_live() -> None:
    stream = f"versions{uuid.uuid4().hex[:8]}"
    for version in range(1, 101):
        live = {str(version): {"accuracy": 0.5, "f1": 0.5}, str(version + 1): {"accuracy": 0.6}}
        set_model_metrics(stream, live, {"accuracy": 0.55})
    series = [s for s in samples() if s.labels.get("stream") == stream]

    assert len([s for s in series if s.name == "meander_model_metric"]) == 3
    assert {s.labels["version"] for s in series if "version" in s.labels} == {"100", "101"}


def test_every_dead_letter_of_the_run_is_counted_under_the_class_of_its_reason(
    run: Run, read_topic: ReadTopic
) -> None:
    letters = [e.payload for e in read_topic(run.runtime, topics.DEADLETTER)]
    classes = Counter(
        (letter.component, dead_letter_reason(letter.reason))
        for letter in letters
        if isinstance(letter, DeadLetter)
    )

    assert classes == {
        ("predictor", "undecodable"): 1,
        ("predictor", "schema"): BAD_EVENTS - 1,
        ("learner", "wrong_label"): BAD_LABELS,
    }
