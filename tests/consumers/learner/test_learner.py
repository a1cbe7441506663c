"""The learner joins labels to events, learns, checkpoints, resumes, and asks for retraining."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from prometheus_client import REGISTRY
from river import neighbors, tree

from meander import keys, topics
from meander.bus import Record, ordered
from meander.component import drain
from meander.config import LabelWindow, StreamConfig
from meander.consumers.learner import checkpoint
from meander.consumers.learner.learner import Learner
from meander.consumers.predictor.predictor import Predictor
from meander.consumers.trainer.trainer import Trainer
from meander.events import Alert, DeadLetter, FeatureEvent, Feedback, ModelEvent, encode
from meander.exceptions import BusUnavailable, ModelTampered
from meander.keys import race as race_key
from meander.models.inference import predict_one
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

if TYPE_CHECKING:
    from tests.consumers.conftest import MakeRuntime, MakeStream, PublishSamples, ReadTopic

# No snapshot or checkpoint unless a test asks for one.
QUIET = {
    "publish_every": 1_000_000,
    "publish_seconds": 3_600,
    "checkpoint_every": 1_000_000,
    "checkpoint_seconds": 3_600,
}


@dataclass
class Site:
    runtime: Runtime
    stream: StreamConfig
    registry: Registry
    predictor: Predictor


@pytest.fixture
def site(make_stream: MakeStream, make_runtime: MakeRuntime) -> Iterator[Site]:
    stream = make_stream("s", learning=QUIET)
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    predictor = Predictor(runtime, stream)
    yield Site(runtime, stream, registry, predictor)
    predictor.close()


def serve(site: Site, publish_samples: PublishSamples, count: int, start: int = 0) -> list[Record]:
    """Publish ``count`` events and score them; their feedback, not yet published."""
    published = publish_samples(site.runtime, site.stream, count, start=start, labels=False)
    drain([site.predictor])
    return published.feedback


def models_events(site: Site, read_topic: ReadTopic) -> list[ModelEvent]:
    found = read_topic(site.runtime, topics.MODELS)
    return [e.payload for e in found if isinstance(e.payload, ModelEvent)]


def test_a_step_that_fails_midway_loses_no_label(
    site: Site, publish_samples: PublishSamples, monkeypatch: pytest.MonkeyPatch
) -> None:
    learner = Learner(site.runtime, site.stream, batch=100)
    learner.step()
    site.runtime.bus.publish(serve(site, publish_samples, 300))
    learner.step()
    assert learner.state is not None and learner.state.labels == 100
    learner.checkpoint()
    readers = learner._readers
    caught_up, failed = readers.caught_up, []

    def broker_gone_once() -> Any:
        if not failed:
            failed.append(True)
            raise BusUnavailable("no Kafka broker answered")
        return caught_up()

    monkeypatch.setattr(readers, "caught_up", broker_gone_once)
    with pytest.raises(BusUnavailable):
        learner.step()  # took 100 labels off the reader, then failed
    drain([learner])

    assert learner.state is not None and learner.state.labels == 300


def test_a_catch_up_never_stops_short_of_the_events_it_was_asked_for(
    site: Site, publish_samples: PublishSamples, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads of the events that bring nothing (a loaded broker): the step waits, then fails as
    # in an outage, rather than join labels and predictions to events it has not read (those
    # predictions were lost from the served metrics, those labels dead-lettered as unknown).
    learner = Learner(site.runtime, site.stream, batch=100)
    learner.step()
    feedback = serve(site, publish_samples, 300)
    learner.checkpoint()
    monkeypatch.setattr(ordered, "STALL_SECONDS", 0.2)
    monkeypatch.setattr(learner._readers.events.consumer, "consume", lambda *_: [])
    site.runtime.bus.publish(feedback)
    with pytest.raises(BusUnavailable, match="short of the end"):
        learner.step()
    drain([learner])  # resumed from the checkpoint, on new readers

    state = learner.state
    assert state is not None and state.labels == 300
    # Each label met its event and what was served for it (the untrained tree's None).
    assert state.counts["unanswered"] == 300
    assert not state.counts["unmatched"] and not state.counts["rejected_feedback"]
    assert not state.join.labelled


def test_the_first_step_registers_and_announces_the_configured_champion(
    site: Site, read_topic: ReadTopic
) -> None:
    learner = Learner(site.runtime, site.stream)

    learner.step()

    champion = site.registry.champion()
    assert champion is not None and learner.state is not None
    assert learner.state.champion == champion
    assert site.registry.get(champion).spec == "tree.HoeffdingTreeClassifier"
    [event] = models_events(site, read_topic)
    assert (event.action, event.version, event.previous_version) == ("promoted", champion, None)


def test_the_configured_champion_of_a_learner_killed_before_announcing_it_is_announced_later(
    site: Site, read_topic: ReadTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*_: object, **__: object) -> None:
        raise BusUnavailable("no Kafka broker answered")

    monkeypatch.setattr(site.runtime.bus, "publish", broker_down)
    with pytest.raises(BusUnavailable):
        Learner(site.runtime, site.stream).step()  # then killed
    monkeypatch.undo()
    champion = site.registry.champion()
    assert champion is not None and models_events(site, read_topic) == []

    Learner(site.runtime, site.stream).step()  # its successor finds the champion made
    trainer = Trainer(site.runtime, site.stream)
    trainer.step()
    trainer.close()

    [event] = models_events(site, read_topic)
    assert (event.action, event.version, event.previous_version) == ("promoted", champion, None)


def dead_letters(site: Site, read_topic: ReadTopic) -> list[DeadLetter]:
    found = read_topic(site.runtime, topics.DEADLETTER)
    return [e.payload for e in found if isinstance(e.payload, DeadLetter)]


def test_labels_published_before_their_events_wait_for_them_and_are_learned(
    site: Site, read_topic: ReadTopic
) -> None:
    # A labeller faster than the producer of the events: each label was dead-lettered, and
    # none learned.
    learner = Learner(site.runtime, site.stream, batch=20)
    learner.step()
    events, feedback = Publisher("s").push(list(synthetic("sea", seed=7).samples(50)))
    site.runtime.bus.publish(feedback)
    drain([learner])
    assert learner.state is not None and learner.state.labels == 0
    assert len(learner.state.join.held) == 50 == metric("meander_feedback_held", stream="s")
    site.runtime.bus.publish(events)
    drain([learner])
    assert metric("meander_feedback_held", stream="s") == 0

    state = learner.state
    assert state.labels == 50 and not state.join.held and len(state.recent) == 50
    assert len({(where[2], where[3]) for where in state.recent}) == 50  # each label once
    assert not dead_letters(site, read_topic) and not state.counts["unmatched"]


def test_a_label_whose_event_never_comes_is_dead_lettered_once_its_hold_is_over(
    site: Site, read_topic: ReadTopic
) -> None:
    learner = Learner(site.runtime, site.stream)
    learner.step()
    label = encode(topics.feedback("s"), Feedback(event_id="never", label=True), source="/t")
    hour_ago = int(time.time() * 1000) - 3_600_000  # on the record clock that holds it
    site.runtime.bus.publish(
        [Record(label.topic, label.value, label.key, label.headers, 0, hour_ago)]
    )
    drain([learner])
    assert learner.state is not None and len(learner.state.join.held) == 1
    assert not dead_letters(site, read_topic)  # no event read since: it may still come
    events, _ = Publisher("s").push(list(synthetic("sea", seed=7).samples(1)))
    site.runtime.bus.publish(events)  # an event an hour after the label, not its own
    drain([learner])

    (letter,) = dead_letters(site, read_topic)
    assert "no event 'never' is waiting for a label" in letter.reason
    assert "or not on s.events within 60 s of its label" in letter.reason
    assert not learner.state.join.held and learner.state.counts["unmatched"] == 1


def test_the_oldest_held_label_is_dead_lettered_when_too_many_wait(
    make_stream: MakeStream, make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    stream = make_stream("s", learning=QUIET, label_window={"max_held": 2})
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    learner.step()
    runtime.bus.publish(
        [
            encode(topics.feedback("s"), Feedback(event_id=f"e{i}", label=True), source="/t")
            for i in range(3)
        ]
    )
    drain([learner])

    letters = [e.payload for e in read_topic(runtime, topics.DEADLETTER)]
    assert [d.reason.split("'")[1] for d in letters if isinstance(d, DeadLetter)] == ["e0"]
    assert learner.state is not None and [held[0] for held in learner.state.join.held] == [
        "e1",
        "e2",
    ]


def test_a_label_held_across_a_restart_is_learned_once_its_event_comes(
    site: Site, read_topic: ReadTopic
) -> None:
    crashed = Learner(site.runtime, site.stream, batch=20)
    crashed.step()
    events, feedback = Publisher("s").push(list(synthetic("sea", seed=7).samples(70)))
    site.runtime.bus.publish(feedback[:50])
    drain([crashed])
    crashed.checkpoint()  # 50 labels held, and the offsets past them
    site.runtime.bus.publish(feedback[50:])
    drain([crashed])  # 20 more held, then died without writing another checkpoint
    assert crashed.state is not None and len(crashed.state.join.held) == 70
    crashed.lease.release()

    resumed = Learner(site.runtime, site.stream, batch=20)
    resumed.step()
    assert resumed.state is not None and len(resumed.state.join.held) == 70
    site.runtime.bus.publish(events)
    drain([resumed])

    assert resumed.state.labels == 70 and not resumed.state.join.held
    assert len({(where[2], where[3]) for where in resumed.state.recent}) == 70
    assert not dead_letters(site, read_topic)


def test_labels_are_joined_to_their_served_events_and_learned(
    site: Site, publish_samples: PublishSamples
) -> None:
    learner = Learner(site.runtime, site.stream, batch=100)
    learner.step()
    feedback = serve(site, publish_samples, 300)
    site.runtime.bus.publish(feedback)

    drain([learner])

    state = learner.state
    assert state is not None
    assert state.labels == 300 and len(state.join) == 0
    # The untrained first tree served None for every event: joined, and not scored as wrong.
    assert state.counts["unanswered"] == 300
    assert "champion" not in state.served
    probe = {"x0": 5.0, "x1": 5.0, "x2": 5.0}
    assert predict_one(state.models[state.champion], probe, "binary")[0] is not None
    assert len(state.recent) == 300
    assert learner.handled_labels == 300


def test_feedback_that_cannot_be_learned_is_dead_lettered_with_the_reason(
    site: Site, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    # Labels of unknown events are dead-lettered at once (none is held for its event).
    stream = site.stream.model_copy(update={"label_window": LabelWindow(hold_seconds=0)})
    learner = Learner(site.runtime, stream)
    learner.step()
    feedback = serve(site, publish_samples, 3)
    where = topics.feedback("s")
    later = datetime.now(UTC) + timedelta(hours=2)  # the batch's other labels are on time
    bad = [
        encode(where, Feedback(event_id="nobody", label=True), source="/test"),
        encode(where, Feedback(event_id="sea-7-00000001", label=0.5), source="/test"),
        encode(
            where,
            Feedback(event_id="sea-7-00000002", label=True, observed_at=later),
            source="/test",
        ),
        encode(where, FeatureEvent(id="e", features={"x0": 1.0}), source="/test"),
        Record(where, b"not an event", partition=0),
    ]
    # An event from 2 h ahead, read with the good ones, is skipped: its label finds no event.
    ahead = FeatureEvent(id="ahead", time=later, features={"x0": 1.0, "x1": 1.0, "x2": 1.0})
    site.runtime.bus.publish([encode(topics.events("s"), ahead, source="/test")])
    bad.append(encode(where, Feedback(event_id="ahead", label=True), source="/test"))
    site.runtime.bus.publish([*feedback[:1], *bad])

    drain([learner])

    assert learner.state is not None
    assert learner.state.labels == 1
    assert learner.state.counts["rejected_feedback"] == len(bad)
    letters = [
        e.payload
        for e in read_topic(site.runtime, topics.DEADLETTER)
        if isinstance(e.payload, DeadLetter)
    ]
    assert {(d.component, d.topic) for d in letters} == {("learner", where)}
    reasons = " | ".join(sorted(d.reason for d in letters))
    assert "no event 'nobody' is waiting for a label" in reasons
    assert "no event 'ahead' is waiting for a label" in reasons
    assert "label 0.5 (float) is not a class label" in reasons
    assert "time " in reasons and "ahead of the clock" in reasons
    assert f"expected {Feedback.type} on {where}, got {FeatureEvent.type}" in reasons
    assert "not JSON (" in reasons and "or the label alone keyed by the event id" in reasons
    assert len(letters) == len(bad)
    # The event whose label had the wrong type still waits for a good one.
    assert {"sea-7-00000001", "sea-7-00000002"} <= set(learner.state.join.pending)


def summary(learner: Learner) -> dict[str, Any]:
    """Everything a learner would go on from: equal summaries, equal learners."""
    state = learner.state
    assert state is not None
    probes = [s.features for s in synthetic("sea", seed=99).samples(30)]
    return {
        "labels": state.labels,
        "metrics": {v: m.report() for v, m in state.metrics.items()},
        "served": {k: m.report() for k, m in state.served.items()},
        "detector": (state.detector.width, state.detector.estimation),
        "recent": list(state.recent),
        "pending": sorted(state.join.pending),
        "predictions": [predict_one(state.models[state.champion], x, "binary") for x in probes],
    }


def test_a_learner_resumes_from_the_checkpoint_and_ends_as_if_never_stopped(
    site: Site, publish_samples: PublishSamples
) -> None:
    crashed = Learner(site.runtime, site.stream, batch=100)
    crashed.step()
    site.runtime.bus.publish(serve(site, publish_samples, 600))
    while crashed.handled_labels < 200:
        crashed.step()
    crashed.checkpoint()
    at_checkpoint = crashed.handled_labels
    crashed.step()
    crashed.step()  # learned past the checkpoint, then died without writing another
    assert at_checkpoint < crashed.handled_labels < 600
    crashed.lease.release()

    resumed = Learner(site.runtime, site.stream, batch=100)
    drain([resumed])
    resumed.lease.release()

    site.runtime.store.delete("meander:s:learner:checkpoint")
    uninterrupted = Learner(site.runtime, site.stream, batch=100)
    drain([uninterrupted])

    assert summary(resumed) == summary(uninterrupted)
    assert summary(resumed)["labels"] == 600


def test_a_checkpoint_holds_the_offsets_it_was_taken_at(
    site: Site, publish_samples: PublishSamples
) -> None:
    learner = Learner(site.runtime, site.stream, batch=100)
    learner.step()
    site.runtime.bus.publish(serve(site, publish_samples, 250))
    drain([learner])
    learner.checkpoint()
    saved = learner.checkpoints.load()
    assert saved is not None
    learner.lease.release()

    again = Learner(site.runtime, site.stream, batch=100)
    again.step()

    assert again.state is not None
    by_topic: dict[str, int] = {}
    for partition, offset in saved.offsets.items():
        by_topic[partition.topic] = by_topic.get(partition.topic, 0) + offset
    assert by_topic[topics.feedback("s")] == 250 == by_topic[topics.events("s")]
    assert by_topic[topics.predictions("s")] == 250
    assert again.state.labels == 250
    assert again.state.offsets == saved.offsets


def test_a_tampered_checkpoint_is_refused(site: Site, publish_samples: PublishSamples) -> None:
    site.runtime.bus.publish(serve(site, publish_samples, 50))
    learner = Learner(site.runtime, site.stream)
    drain([learner])
    learner.checkpoint()
    learner.lease.release()
    key = "meander:s:learner:checkpoint"
    blob = site.runtime.store.get(key)
    assert blob is not None
    site.runtime.store.set(key, blob[:-1] + bytes([blob[-1] ^ 1]))

    with pytest.raises(ModelTampered):
        Learner(site.runtime, site.stream).step()


def test_closing_checkpoints_and_lets_a_standby_take_over(
    site: Site, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    site.runtime.bus.publish(serve(site, publish_samples, 120))
    active, standby = Learner(site.runtime, site.stream), Learner(site.runtime, site.stream)
    drain([active])
    published = len(models_events(site, read_topic))

    assert standby.step() == 0
    assert standby.state is None
    assert len(models_events(site, read_topic)) == published

    active.close()
    drain([standby])

    assert standby.state is not None and standby.state.labels == 120


def test_models_and_metrics_are_shared_every_publish_every_labels(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    stream = make_stream("s", learning={**QUIET, "publish_every": 100})
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream, batch=100)
    learner.step()
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    champion = registry.champion()
    assert champion is not None

    publish_samples(runtime, stream, 250)
    drain([learner])

    # Registered, then a snapshot at least every 100 labels, and (while the model is young) up
    # to 16 times as often, never more: how often depends on how the labels were batched.
    assert 1 + 250 // 100 <= registry.heads().revisions[champion] <= 1 + 250 // (100 // 16)
    metrics = orjson.loads(runtime.store.get("meander:s:metrics") or b"{}")
    assert metrics["champion"] == champion and 100 <= metrics["labels"] <= 250
    shared, _ = registry.load(champion)
    probe = {"x0": 5.0, "x1": 5.0, "x2": 5.0}
    assert predict_one(shared, probe, "binary")[0] is not None


@pytest.mark.parametrize(("bound", "shared"), [(0.01, True), (3_600.0, False), (None, False)])
def test_labels_of_a_quiet_stream_are_shared_once_they_waited_publish_seconds(
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    bound: float | None,
    shared: bool,
) -> None:
    stream = make_stream("s", learning={**QUIET, "publish_every": 100, "publish_seconds": bound})
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    learner.step()
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    champion = registry.champion()
    assert champion is not None
    registered = registry.heads().revisions[champion]

    publish_samples(runtime, stream, 5)  # fewer than even a young model's pace (6)
    drain([learner])
    time.sleep(0.02)  # the user waits; no label comes
    learner.step()

    # A user who sent a few labels and waits sees them in the predictors' copy and the
    # overview's count, not after 95 more; with no bound (a backtest), not before them.
    metrics = orjson.loads(runtime.store.get("meander:s:metrics") or b"{}")
    assert (registry.heads().revisions[champion] > registered) is shared
    assert metrics.get("labels") == (5 if shared else None)


def test_a_held_label_learned_when_its_event_comes_is_shared_though_no_label_follows(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream = make_stream("s", learning={**QUIET, "publish_every": 100, "publish_seconds": 0.01})
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    learner.step()
    events, feedback = Publisher("s").push(list(synthetic("sea", seed=7).samples(5)))
    runtime.bus.publish(feedback)
    drain([learner])  # held: their events have not come
    time.sleep(0.02)
    learner.step()  # shares what it has: nothing learned yet
    runtime.bus.publish(events)
    drain([learner])  # learned, with no label read since
    time.sleep(0.02)
    learner.step()

    metrics = orjson.loads(runtime.store.get("meander:s:metrics") or b"{}")
    assert learner.state is not None and learner.state.labels == 5
    assert metrics.get("labels") == 5


def test_a_big_model_left_for_later_by_its_size_is_shared_once_labels_stop(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    stream = make_stream("s", learning={**QUIET, "publish_every": 1, "publish_seconds": 0.01})
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    drain([learner])  # registers the first champion and follows its announcement
    state = learner.state
    assert state is not None
    rng = random.Random(7)
    big = neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=2_000))
    for _ in range(2_000):
        big.learn_one({f"x{i}": rng.random() for i in range(3)}, rng.random() < 0.5)
    state.models[state.champion] = big
    publish_samples(runtime, stream, 1)
    drain([learner])  # its first snapshot (~100 KB) paces the next ones by its size
    before = learner.registry.heads().revisions[state.champion]

    publish_samples(runtime, stream, 5, start=1)  # shared by count, but too few for its size
    drain([learner])
    time.sleep(0.02)  # no label comes
    learner.step()

    # The predictors' copy has the 5 labels: the big model is the one a quiet stream left
    # behind for ever (the ~1,000 labels an ARF(10) champion's size asks for).
    assert learner.registry.heads().revisions[state.champion] > before


def test_a_young_challenger_sets_the_pace_of_sharing(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    stream = make_stream("s", learning={**QUIET, "publish_every": 400})
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream, batch=10)
    learner.step()
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    publish_samples(runtime, stream, 600)
    drain([learner])
    challenger = registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    registry.add_challenger(challenger)
    event = ModelEvent(action="challenger_trained", stream="s", version=challenger)
    runtime.bus.publish([encode(topics.MODELS, event, source="/test")])
    joined = registry.heads().revisions[challenger]

    publish_samples(runtime, stream, 100, start=600)
    drain([learner])

    # 600 labels in, the champion alone would be shared again after 300 labels. The predictors
    # score the challenger's race with their copy of it: a copy of the untrained tree would
    # answer nothing, so its race's age sets the pace (every 25 to 50 labels here).
    assert registry.heads().revisions[challenger] - joined >= 3


def test_a_snapshot_follows_learning_and_a_big_model_learns_in_proportion_to_its_size_first(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream = make_stream("s", learning=QUIET)
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    learner.step()
    state, checkpoints = learner.state, learner.checkpoints
    assert state is not None
    champion = state.champion

    def shared(labels: int, *, decided: bool = False, overdue: bool = False) -> int:
        """Snapshots written by publishing after ``labels`` more labels."""
        before = learner.registry.heads().revisions[champion]
        state.labels += labels
        checkpoints.publish_models(state, decided=decided, overdue=overdue)
        return learner.registry.heads().revisions[champion] - before

    assert shared(1) == 1
    assert shared(0) == 0 and shared(0, decided=True) == 0  # it learned nothing since
    assert shared(1) == 1  # the linear champion's snapshot is a few KB
    rng = random.Random(7)
    big = neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=2_000))
    for _ in range(2_000):
        big.learn_one({f"x{i}": rng.random() for i in range(5)}, rng.random() < 0.5)
    state.models[champion] = big
    assert shared(1) == 1
    # ~160 KB: its next snapshot waits for ~320 labels, unless a decision was just made or
    # the labels waited long enough.
    assert shared(1) == 0 and shared(200) == 0
    assert shared(1, decided=True) == 1
    assert shared(1, overdue=True) == 1  # waited publish_seconds
    assert shared(1) == 0 and shared(1_000) == 1


def test_a_big_model_goes_on_as_its_snapshots_copy(
    make_stream: MakeStream, make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "COPIED_FROM_BYTES", 100_000)
    stream = make_stream("s", learning=QUIET)
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    learner.step()
    state = learner.state
    assert state is not None
    champion, small = state.champion, state.models[state.champion]
    state.labels += 1
    learner.checkpoints.publish_models(state)
    assert state.models[champion] is small  # a few KB: learning it costs less than a copy
    rng = random.Random(7)
    big = neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=2_000))
    for _ in range(2_000):
        big.learn_one({f"x{i}": rng.random() for i in range(5)}, rng.random() < 0.5)
    state.models[champion] = big
    state.labels += 1
    learner.checkpoints.publish_models(state)

    copy = state.models[champion]
    assert copy is not big
    shared, _ = learner.registry.load(champion)
    probe = {f"x{i}": rng.random() for i in range(5)}
    assert copy.predict_proba_one(probe) == big.predict_proba_one(probe)
    assert shared.predict_proba_one(probe) == big.predict_proba_one(probe)


def test_models_metrics_and_races_are_shared_in_one_fenced_write(
    site: Site, publish_samples: PublishSamples, monkeypatch: pytest.MonkeyPatch
) -> None:
    learner = Learner(site.runtime, site.stream)
    learner.step()
    challenger = site.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    site.registry.add_challenger(challenger)
    event = ModelEvent(action="challenger_trained", stream="s", version=challenger)
    site.runtime.bus.publish([encode(topics.MODELS, event, source="/test")])
    site.runtime.bus.publish(serve(site, publish_samples, 80))
    drain([learner])
    state = learner.state
    assert state is not None and state.races
    revisions = site.registry.heads().revisions
    checks = 0
    check = learner.lease.check

    def counted(pipe: Any) -> None:
        nonlocal checks
        checks += 1
        check(pipe)

    monkeypatch.setattr(learner.lease, "check", counted)
    state.labels += 1  # as if both models had learned a label, and the race moved with it
    [(pair, race)] = state.races.items()
    race.update(True, True, False)
    learner.checkpoints.publish_models(state, decided=True)

    # Champion and challenger snapshots, the metrics and the race: one check of the lease.
    assert checks == 1
    assert site.registry.heads().revisions == {v: r + 1 for v, r in revisions.items()}
    stored = site.runtime.store.hgetall(keys.race("s", *pair))
    assert int(stored[b"seen"]) == race.seen
    assert (
        orjson.loads(site.runtime.store.get(keys.metrics("s")) or b"{}")["labels"] == state.labels
    )


def test_a_trained_challenger_joins_and_its_race_is_written_for_the_trainer_as_it_changes(
    site: Site, publish_samples: PublishSamples
) -> None:
    learner = Learner(site.runtime, site.stream)
    learner.step()
    challenger = site.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    site.registry.add_challenger(challenger)
    event = ModelEvent(action="challenger_trained", stream="s", version=challenger)
    site.runtime.bus.publish([encode(topics.MODELS, event, source="/test")])

    site.runtime.bus.publish(serve(site, publish_samples, 80))
    drain([learner])

    assert learner.state is not None and challenger in learner.state.models
    champion = learner.state.champion
    race = site.runtime.store.hgetall(race_key("s", challenger, champion))
    # Both trees served None (untrained) and the race asked them instead: at the first label
    # neither had learned anything, so that pair has no answer and is not scored.
    assert int(race[b"seen"]) == 79

    # A step that learns no label changes no race: it writes nothing (no round trip). The next
    # labels do change it, and it is written again.
    site.runtime.store.delete(race_key("s", challenger, champion))
    learner.step()
    assert site.runtime.store.hgetall(race_key("s", challenger, champion)) == {}
    site.runtime.bus.publish(serve(site, publish_samples, 10, start=80))
    drain([learner])
    assert int(site.runtime.store.hgetall(race_key("s", challenger, champion))[b"seen"]) == 89


STAGGER_CHANGE = 1_500  # the event at which stagger's concept changes, once in 3,000


def stagger(make_runtime: MakeRuntime) -> tuple[Runtime, StreamConfig]:
    """Stagger: a tree learns each concept almost perfectly, so the error rises at the change and
    only there."""
    stream = synthetic("stagger", drift_every=STAGGER_CHANGE, seed=7).stream_config(
        "stagger", model="tree.HoeffdingTreeClassifier", learning={"replay_window": 500}
    )
    return make_runtime(stream), stream


def learn_stagger(
    runtime: Runtime,
    stream: StreamConfig,
    learner: Learner,
    after: Callable[[int], None] = lambda start: None,
) -> None:
    """3,000 events of stagger in chunks of 100, each chunk predicted, then labelled and learned
    (``after`` is called with the chunk's first event)."""
    predictor = Predictor(runtime, stream)
    learner.step()
    publisher = Publisher(stream.name)
    samples = list(synthetic("stagger", drift_every=STAGGER_CHANGE, seed=7).samples(3_000))
    for start in range(0, len(samples), 100):
        events, feedback = publisher.push(samples[start : start + 100])
        runtime.bus.publish(events)
        drain([predictor])
        runtime.bus.publish(feedback)
        drain([learner])
        after(start)
    predictor.close()


def test_a_drift_after_the_change_point_asks_for_a_retrain_with_the_window_to_replay(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    runtime, stream = stagger(make_runtime)
    learn_stagger(runtime, stream, Learner(runtime, stream))

    requests = [
        e.payload
        for e in read_topic(runtime, topics.MODELS)
        if isinstance(e.payload, ModelEvent) and e.payload.action == "retrain_requested"
    ]
    assert requests, "no retrain request after the concept changed"
    at = [int((r.at_event or "").rsplit("-", 1)[1]) for r in requests]
    assert min(at) >= STAGGER_CHANGE
    first = requests[0]
    assert first.evidence["labels"] > STAGGER_CHANGE and first.evidence["window"] == 500
    replay = first.evidence["replay"]
    assert sum(hi - lo for lo, hi in replay["feedback"].values()) == 500
    assert sum(hi - lo for lo, hi in replay["events"].values()) >= 500
    alerts = [
        e.payload
        for e in read_topic(runtime, topics.ALERTS)
        if isinstance(e.payload, Alert) and e.payload.kind == "concept_drift"
    ]
    assert alerts and first.evidence["alert"] is not None


def test_a_learner_resumed_from_before_a_drift_announces_it_again_under_the_same_ids(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    runtime, stream = stagger(make_runtime)
    first = Learner(runtime, stream)
    before_the_drift = b""

    def checkpoint(start: int) -> None:
        nonlocal before_the_drift
        if start == 1_300:
            first.checkpoint()
            before_the_drift = runtime.store.get(keys.checkpoint("stagger")) or b""

    learn_stagger(runtime, stream, first, checkpoint)
    # It dies; the last checkpoint that made it anywhere is the one before the drift.
    runtime.store.set(keys.checkpoint("stagger"), before_the_drift)
    runtime.store.delete(keys.lease("stagger"))
    second = Learner(runtime, stream)
    drain([second])
    second.close()
    first.lease.release()

    def announced() -> list[tuple[str, str]]:
        found = read_topic(runtime, topics.ALERTS) + read_topic(runtime, topics.MODELS)
        return [
            (e.id, getattr(e.payload, "kind", None) or e.payload.action)  # type: ignore[attr-defined]
            for e in found
            if isinstance(e.payload, Alert) or e.payload.action == "retrain_requested"  # type: ignore[attr-defined]
        ]

    drift = [(i, what) for i, what in announced() if what == "concept_drift"]
    assert len(drift) == 2 and drift[0] == drift[1]  # the same drift, announced twice
    requests = [i for i, what in announced() if what == "retrain_requested"]
    assert len(requests) == 2 * len(set(requests))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_labels_are_counted_joined_unmatched_or_expired_and_each_once(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    name = f"labels{uuid.uuid4().hex[:8]}"
    stream = make_stream(
        name, learning=QUIET, label_window={"max_pending": 5, "hold_seconds": 0}, partitions=1
    )
    runtime = make_runtime(stream)
    predictor, learner = Predictor(runtime, stream), Learner(runtime, stream)
    learner.step()
    counted = ("joined", "unmatched", "expired")
    before = {c: metric(f"meander_feedback_{c}_total", stream=name) for c in counted}
    published = publish_samples(runtime, stream, 12, labels=False)
    drain([predictor])
    stranger = encode(topics.feedback(name), Feedback(event_id="nobody", label=True), source="/t")
    runtime.bus.publish([*published.feedback[-3:], stranger])
    drain([learner])
    learner.checkpoint()
    learner.close()
    resumed = Learner(runtime, stream)  # resumes from the checkpoint: nothing counts twice
    drain([resumed])

    after = {c: metric(f"meander_feedback_{c}_total", stream=name) for c in counted}
    # 12 events wait in a window of 5: the 7 oldest expire unlabelled.
    assert {c: after[c] - before[c] for c in counted} == {"joined": 3, "unmatched": 1, "expired": 7}
    resumed.close()
    predictor.close()


def test_the_checkpoint_time_is_set_by_a_checkpoint_and_goes_with_the_stream(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    name = f"ckpt{uuid.uuid4().hex[:8]}"
    stream = make_stream(name, learning=QUIET)
    runtime = make_runtime(stream)
    learner = Learner(runtime, stream)
    learner.step()
    labels = {"stream": name}
    # No series before the first checkpoint: a 0 would read as a checkpoint from 1970.
    assert REGISTRY.get_sample_value("meander_checkpoint_timestamp_seconds", labels) is None

    started = time.time()
    learner.checkpoint()
    assert metric("meander_checkpoint_timestamp_seconds", **labels) >= started

    learner.close()  # another learner takes the stream: this one's checkpoint time must not age
    assert REGISTRY.get_sample_value("meander_checkpoint_timestamp_seconds", labels) is None


@pytest.mark.parametrize(("tune_first", "tune_after"), [(True, 1_000), (True, 100), (False, 1_000)])
def test_the_first_champion_races_the_candidates_once_it_has_learned_enough(
    tune_first: bool,
    tune_after: int,
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
) -> None:
    learning = {"replay_window": 200, "tune_first": tune_first, "tune_after": tune_after}
    requests = _requests_over_600_labels(
        learning, make_stream, make_runtime, publish_samples, read_topic
    )
    if not tune_first:
        assert requests == []
        return
    assert len(requests) == 1, "tuning is asked for once, not at every label after the window"
    tuning = requests[0]
    first = min(tune_after, 200)  # tune_after labels, or the replay window if fewer
    assert tuning.evidence["tuning"] is True and tuning.evidence["labels"] == first
    assert tuning.evidence["window"] == tuning.evidence["since_change"] == first
    assert tuning.reason.startswith("first tuning")


@pytest.mark.parametrize("again", [400, 0, None])  # None: the default, never for classification
def test_the_candidates_race_once_more_on_a_longer_window_when_no_drift_came(
    again: int | None,
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
) -> None:
    learning = {"replay_window": 200, "tune_after": 100, "tune_again_after": again}
    requests = _requests_over_600_labels(
        learning, make_stream, make_runtime, publish_samples, read_topic
    )
    assert [r.evidence["labels"] for r in requests] == ([100, 400] if again else [100])
    assert requests[0].evidence["window"] == 100 and requests[0].reason.startswith("first tuning")
    if again:
        # Warm-started on every label kept, beyond the replay window of drift retrains.
        second = requests[1]
        assert second.evidence["tuning"] is True and second.evidence["window"] == 400
        assert second.reason.startswith("tuning again")
        replayed = second.evidence["replay"]["feedback"]
        assert sum(hi - lo for lo, hi in replayed.values()) == 400


def _requests_over_600_labels(
    learning: dict[str, Any],
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
) -> list[ModelEvent]:
    """The retrain requests of a learner, with one candidate configured, over 600 labels."""
    stream = make_stream(
        "s",
        candidates=["tree.HoeffdingAdaptiveTreeClassifier(seed=1)"],
        learning=QUIET | learning,
    )
    runtime = make_runtime(stream)
    learner, predictor = Learner(runtime, stream), Predictor(runtime, stream)
    learner.step()
    for start in range(0, 600, 100):
        publish_samples(runtime, stream, 100, start=start)
        drain([predictor, learner])
    predictor.close()
    return [
        e.payload
        for e in read_topic(runtime, topics.MODELS)
        if isinstance(e.payload, ModelEvent) and e.payload.action == "retrain_requested"
    ]
