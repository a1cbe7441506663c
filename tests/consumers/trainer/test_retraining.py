"""Challengers learn the replayed window of a retrain request, in the order the learner saw it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from river import dummy, tree

from meander import topics
from meander.bus import Record, TopicPartition
from meander.bus.ordered import OrderedReader
from meander.consumers.trainer.retraining import (
    SCORED_LABELS,
    Candidate,
    candidates,
    replay_window,
    within_reach,
)
from meander.events import Feedback, decode, encode
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import spec_text
from meander.runtime import Runtime

if TYPE_CHECKING:
    from meander.config import StreamConfig
    from tests.consumers.conftest import MakeRuntime, MakeStream, PublishSamples


def whole(runtime: Runtime, topic: str) -> dict[str, list[int]]:
    partitions = [TopicPartition(topic, p) for p in range(runtime.bus.partitions(topic))]
    with runtime.bus.assign(partitions) as consumer:
        ends = consumer.end_offsets(partitions)
    return {str(p.partition): [0, ends[p]] for p in partitions}


def learned_order(runtime: Runtime, stream: str) -> list[str]:
    """The event ids of the feedback in the order a learner reads it."""
    reader = OrderedReader(runtime.bus, topics.feedback(stream))
    ids = []
    while batch := reader.take(1_000):
        for message in batch:
            feedback = decode(message).payload
            assert isinstance(feedback, Feedback)
            ids.append(feedback.event_id)
    reader.close()
    return ids


def test_the_window_is_the_labelled_events_in_the_order_the_learner_learned_them(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    stream = make_stream("s")
    runtime = make_runtime(stream)
    published = publish_samples(runtime, stream, 200)
    replay = {
        "events": whole(runtime, topics.events("s")),
        "feedback": whole(runtime, topics.feedback("s")),
    }

    window = replay_window(runtime.bus, runtime.settings.stream("s"), replay)

    by_id = {s.event_id: (s.features, s.label) for s in published.samples}
    assert window == [by_id[i] for i in learned_order(runtime, "s")]


def test_only_the_ranges_named_are_replayed_and_bad_or_unjoined_labels_are_left_out(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> None:
    stream = make_stream("s", partitions=1)
    runtime = make_runtime(stream)
    published = publish_samples(runtime, stream, 30)
    where = topics.feedback("s")
    late = published.samples[25].event_id
    runtime.bus.publish(
        [
            encode(where, Feedback(event_id=late, label=2.5), source="/t"),
            encode(where, Feedback(event_id="never published", label=True), source="/t"),
            Record(where, b"garbage"),
        ]
    )
    replay = {"events": {"0": [0, 30]}, "feedback": {"0": [10, 33]}}

    window = replay_window(runtime.bus, runtime.settings.stream("s"), replay)

    assert window == [(s.features, s.label) for s in published.samples[10:30]]
    only_events = {"events": {"0": [20, 30]}, "feedback": {"0": [10, 30]}}
    assert len(replay_window(runtime.bus, runtime.settings.stream("s"), only_events)) == 10


def rows(count: int) -> list[tuple[dict[str, Any], Any]]:
    return [({"x0": float(i % 10), "x1": 1.0, "x2": 0.0}, i % 10 >= 5) for i in range(count)]


def test_every_spec_learns_the_labels_since_the_change_and_the_best_comes_first(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    configured = ["naive_bayes.GaussianNB", "tree.HoeffdingTreeClassifier(grace_period=20)"]
    stream = make_stream("s", candidates=configured)
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    window = rows(300)

    built = candidates(stream, registry, window, champion=None, since_change=120)

    assert sorted(c.spec for c in built) == sorted(
        spec_text(s) for s in ["tree.HoeffdingTreeClassifier", *configured]
    )
    assert {c.origin for c in built} == {"fresh", "candidate"}
    assert all(c.window == window[-120:] for c in built)
    assert [c.score for c in built] == sorted((c.score for c in built), reverse=True)
    assert all(0.0 <= c.score <= 1.0 for c in built) and built[0].score > 0.5


X_ZERO = {"x0": 0.0, "x1": 0.0, "x2": 0.0}
SWITCHED = [(X_ZERO, False)] * 700 + [(X_ZERO, True)] * SCORED_LABELS
"""700 labels of one class, then SCORED_LABELS (the latest, those scored) of the other."""


def prior_stream(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> tuple[StreamConfig, Registry]:
    """A stream whose model answers the class it saw most (River's PriorClassifier), with no
    candidates, and its registry."""
    stream = make_stream("s", model="dummy.PriorClassifier", candidates=[])
    runtime = make_runtime(stream)
    return stream, Registry(runtime.store, "s", signer_for(runtime.settings))


def test_candidates_are_scored_on_the_latest_labels_of_what_they_learn(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream, registry = prior_stream(make_stream, make_runtime)
    # The majority class it learned from the whole window is wrong on every one of the latest
    # labels (scored on all of them, it would be right 700 times in 1,000; learning only the
    # latest, it would be right).
    window = SWITCHED

    [built] = candidates(stream, registry, window, champion=None, since_change=len(window))

    assert built.score == 0.0
    assert built.model.counts == {False: 700, True: SCORED_LABELS}


def test_without_labels_since_the_change_specs_start_cold_and_retired_versions_race_as_they_are(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream = make_stream("s", candidates=["naive_bayes.GaussianNB"])
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    knows = tree.HoeffdingTreeClassifier()
    knows.learn_one(X_ZERO, True)
    old = registry.register(knows, spec="tree.HoeffdingTreeClassifier")
    registry.promote(old.version)
    champion = registry.register(tree.HoeffdingTreeClassifier(), spec="x").version
    registry.promote(champion)

    built = candidates(stream, registry, rows(300), champion=champion, since_change=0)

    # The detector caught the change at once: no label says which concept came, and a retired
    # version may know it already. It races unscored, right after the stream's own spec, ahead
    # of the configured candidates, which start cold in their order.
    assert [c.origin for c in built] == ["fresh", "past_version", "candidate"]
    assert all(c.window == [] and c.score == 0.0 for c in built)
    assert built[1].source_version == old.version
    assert built[1].model.predict_one(X_ZERO) is True


def test_retired_versions_of_the_lineage_compete_but_never_the_champion(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream = make_stream("s")
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    versions = []
    for _ in range(4):
        model = tree.HoeffdingTreeClassifier()
        versions.append(registry.register(model, spec="tree.HoeffdingTreeClassifier").version)
        registry.promote(versions[-1])  # each one retires the one before
    champion = versions[-1]

    built = candidates(stream, registry, rows(200), champion=champion, since_change=100)

    past = sorted(c.source_version for c in built if c.origin == "past_version")  # type: ignore[type-var]
    assert past == versions[1:3]  # the two latest retired ones
    assert champion not in past


def test_a_past_version_is_scored_as_it_stands_on_the_latest_labels_only(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    stream, registry = prior_stream(make_stream, make_runtime)
    knows_true = dummy.PriorClassifier()
    knows_true.learn_one(X_ZERO, True)  # the concept of the latest labels, learned long ago
    retired = registry.register(knows_true, spec="dummy.PriorClassifier").version
    registry.promote(retired)
    champion = registry.register(dummy.PriorClassifier(), spec="dummy.PriorClassifier").version
    registry.promote(champion)
    window = SWITCHED

    built = candidates(stream, registry, window, champion, since_change=len(window))

    [past] = [c for c in built if c.origin == "past_version"]
    # Learning the 700 labels before them first (as a fresh model does) would have made it
    # answer False on every one of the latest labels, and cost a whole warm start.
    assert past.score == 1.0 and past.model.counts == {True: 1 + SCORED_LABELS}
    assert past.window == window[-SCORED_LABELS:]


def test_a_spec_is_built_once_even_when_the_stream_lists_it_twice(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    own = "tree.HoeffdingTreeClassifier(grace_period=20)"
    configured = ["naive_bayes.GaussianNB", "tree.HoeffdingTreeClassifier(grace_period = 20)"]
    stream = make_stream("s", model=own, candidates=[*configured, "naive_bayes.GaussianNB"])
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))

    built = candidates(stream, registry, rows(300), champion=None, since_change=120)

    # Each copy is ranked after its twin, with its score; only the twins were trained.
    twins = [c for c in built if not c.copy]
    assert sorted((c.origin, c.spec) for c in twins) == [
        ("candidate", "naive_bayes.GaussianNB"),
        ("fresh", spec_text(own)),
    ]
    for index, candidate in enumerate(built):
        if candidate.copy:
            [twin] = [c for c in built[:index] if c.spec == candidate.spec]
            assert (twin.score, twin.model, twin.copy) == (candidate.score, candidate.model, False)
    assert len(built) == 4


def test_the_first_tuning_leaves_out_a_candidate_of_the_champions_own_spec(
    make_stream: MakeStream, make_runtime: MakeRuntime
) -> None:
    own = "tree.HoeffdingTreeClassifier(grace_period=20)"
    stream = make_stream("s", model=own, candidates=["naive_bayes.GaussianNB", own])
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    champion = registry.register(tree.HoeffdingTreeClassifier(grace_period=20), spec=own).version
    registry.promote(champion)

    tuning = candidates(stream, registry, rows(300), champion, since_change=300, fresh=False)
    after_drift = candidates(stream, registry, rows(300), champion, since_change=120)

    # At the first tuning the champion learned the whole window: a new model of its spec
    # would be its copy. After a drift one learns only the labels since, and races.
    assert [c.spec for c in tuning] == ["naive_bayes.GaussianNB"]
    twins = sorted(c.spec for c in after_drift if not c.copy)
    assert twins == sorted([spec_text(own), "naive_bayes.GaussianNB"])


@pytest.mark.parametrize(
    ("task", "scores", "since", "raced"),
    [
        ("binary", [0.9, 0.86, 0.84], SCORED_LABELS, 2),  # 0.06 behind the best: not raced
        ("multiclass", [0.9, 0.88, 0.5], SCORED_LABELS, 2),
        ("binary", [0.9, 0.86, 0.5], SCORED_LABELS - 1, 3),  # scored on too few labels
        ("regression", [1.0, 1.4, 1.6], 1_000, 2),  # an MAE over 1.5 times the best one's
    ],
)
def test_a_candidate_far_behind_the_best_on_the_latest_labels_is_not_raced(
    task: str, scores: list[float], since: int, raced: int
) -> None:
    ranked = [Candidate(None, f"m{i}", "candidate", score) for i, score in enumerate(scores)]
    assert within_reach(ranked, task, since) == ranked[:raced]


@pytest.mark.parametrize(("since", "given_up"), [(SCORED_LABELS, True), (SCORED_LABELS - 1, False)])
def test_a_candidate_that_cannot_end_within_reach_is_given_up_on_the_way(
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    monkeypatch: pytest.MonkeyPatch,
    since: int,
    given_up: bool,
) -> None:
    stream, registry = prior_stream(make_stream, make_runtime)
    knows_false = dummy.PriorClassifier()
    for _ in range(1_000):
        knows_false.learn_one(X_ZERO, False)  # the concept that left, learned long ago
    retired = registry.register(knows_false, spec="dummy.PriorClassifier").version
    registry.promote(retired)
    champion = registry.register(dummy.PriorClassifier(), spec="dummy.PriorClassifier").version
    registry.promote(champion)
    loaded: list[Any] = []
    load = registry.load
    monkeypatch.setattr(registry, "load", lambda v: loaded.append(load(v)) or loaded[-1])

    built = candidates(stream, registry, SWITCHED, champion, since_change=since)

    # The fresh model, first, is right from its second label on (0.997 on all 300); the past
    # version answers False on every label: once it erred 17 times it could end at 0.943 at
    # best, out of reach (0.05 behind), and learns no more.
    [(past, _)] = loaded
    assert [c.origin for c in built] == (["fresh"] if given_up else ["fresh", "past_version"])
    assert past.counts[True] == (16 if given_up else since)
    # Too few labels scored for within_reach to leave it out: it learns them all, and races.
    assert within_reach(built, "binary", since) == built
