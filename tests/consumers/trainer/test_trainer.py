"""The trainer answers retrain requests with challengers and judges races, watches and rollbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from prometheus_client import REGISTRY
from river import tree

from meander import topics
from meander.bus import TopicPartition
from meander.config import StreamConfig
from meander.consumers.trainer.retraining import candidates, replay_window
from meander.consumers.trainer.trainer import Trainer
from meander.events import ModelEvent, encode
from meander.exceptions import BusUnavailable, StoreUnavailable
from meander.keys import race as race_key
from meander.models.inference import predict_one
from meander.models.race import RecentRace
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime

if TYPE_CHECKING:
    from tests.consumers.conftest import MakeRuntime, MakeStream, PublishSamples, ReadTopic

MIN_SAMPLES, PATIENCE, ROLLBACK_WINDOW = 100, 300, 200


TWO_CANDIDATES = [
    "tree.HoeffdingAdaptiveTreeClassifier(seed=1)",
    "preprocessing.StandardScaler | linear_model.LogisticRegression",
]


@dataclass
class Bench:
    runtime: Runtime
    stream: StreamConfig
    registry: Registry
    trainer: Trainer
    champion: int


@pytest.fixture
def bench(make_stream: MakeStream, make_runtime: MakeRuntime) -> Iterator[Bench]:
    stream = make_stream(
        "s",
        promotion={
            "min_samples": MIN_SAMPLES,
            "patience": PATIENCE,
            "rollback_window": ROLLBACK_WINDOW,
        },
    )
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    champion = registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    registry.promote(champion)
    runtime.store.set("meander:s:last_event", b"e-last")
    trainer = Trainer(runtime, stream)
    yield Bench(runtime, stream, registry, trainer, champion)
    trainer.close()


def decisions(bench: Bench, read_topic: ReadTopic) -> list[ModelEvent]:
    found = read_topic(bench.runtime, topics.MODELS)
    return [
        e.payload
        for e in found
        if isinstance(e.payload, ModelEvent) and e.payload.action != "retrain_requested"
    ]


def whole(runtime: Runtime, topic: str) -> dict[str, list[int]]:
    partitions = [TopicPartition(topic, p) for p in range(runtime.bus.partitions(topic))]
    with runtime.bus.assign(partitions) as consumer:
        ends = consumer.end_offsets(partitions)
    return {str(p.partition): [0, ends[p]] for p in partitions}


def request(bench: Bench, version: int, request_id: str = "req-1", **evidence: Any) -> None:
    event = ModelEvent(
        action="retrain_requested",
        stream="s",
        version=version,
        at_event="e-drift",
        reason="concept drift in the error of champion",
        evidence={"alert": "alert-1"} | evidence,
    )
    bench.runtime.bus.publish([encode(topics.MODELS, event, source="/test", event_id=request_id)])


def test_a_retrain_request_registers_challengers_with_their_lineage(
    bench: Bench, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    publish_samples(bench.runtime, bench.stream, 300)
    replay = {
        "events": whole(bench.runtime, topics.events("s")),
        "feedback": whole(bench.runtime, topics.feedback("s")),
    }
    request(bench, bench.champion, replay=replay, since_change=150)

    bench.trainer.step()

    challengers = bench.registry.challengers()
    assert 1 <= len(challengers) <= bench.stream.learning.max_challengers
    for version in challengers:
        entry = bench.registry.get(version)
        assert entry.status == "challenger" and entry.parent == bench.champion
        assert entry.cause == {
            "request": "req-1",
            "alert": "alert-1",
            "reason": "concept drift in the error of champion",
        }
        assert entry.training["replay"] == replay
        assert 0 < entry.training["window"] <= 300
        model, _ = bench.registry.load(version)
        assert predict_one(model, {"x0": 1.0, "x1": 2.0, "x2": 3.0}, "binary")[0] is not None
    trained = decisions(bench, read_topic)
    assert {e.version for e in trained} == set(challengers)
    assert {(e.action, e.previous_version, e.at_event) for e in trained} == {
        ("challenger_trained", bench.champion, "e-drift")
    }
    assert all(e.evidence["request"] == "req-1" for e in trained)


def test_a_first_tuning_races_the_candidates_and_no_copy_of_the_champion(
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
    read_topic: ReadTopic,
) -> None:
    candidates = TWO_CANDIDATES
    stream = make_stream("s", candidates=candidates, learning={"max_challengers": 3})
    bench, replay = _ready(stream, make_runtime, publish_samples)
    request(bench, bench.champion, replay=replay, since_change=300, tuning=True)

    bench.trainer.step()
    bench.trainer.close()

    registry = bench.registry
    trained = [registry.get(v) for v in registry.challengers()]
    assert sorted(entry.spec for entry in trained) == sorted(candidates)
    assert {entry.training["origin"] for entry in trained} == {"candidate"}
    assert all(entry.training["window"] == 300 for entry in trained)
    assert len(decisions(bench, read_topic)) == len(candidates)


def test_a_spec_listed_twice_races_once_and_its_copy_takes_no_other_place(
    make_stream: MakeStream,
    make_runtime: MakeRuntime,
    publish_samples: PublishSamples,
) -> None:
    own = "preprocessing.StandardScaler | linear_model.LogisticRegression"
    others = ["dummy.NoChangeClassifier", "dummy.PriorClassifier"]
    # The stream's own spec is also a candidate (as in the default search space): the fresh
    # model and the candidate learn the same labels. Two places for three distinct specs.
    stream = make_stream("s", model=own, candidates=[own, *others], learning={"max_challengers": 2})
    bench, replay = _ready(stream, make_runtime, publish_samples)
    champion, registry = bench.champion, bench.registry
    request(bench, champion, replay=replay, since_change=300)
    ranked = candidates(
        stream, registry, replay_window(bench.runtime.bus, stream, replay), champion, 300
    )

    bench.trainer.step()
    bench.trainer.close()

    # The two best places go to what ranked there; a copy among them races as its twin, once.
    assert [c.copy for c in ranked[:2]] == [False, True]  # SEA is linear: the best, and its copy
    expected = {c.spec for c in ranked[:2]}
    specs = [registry.get(v).spec for v in registry.challengers()]
    assert sorted(specs) == sorted(expected) and len(specs) == len(set(specs))


def fail_the_second(bench: Bench, method: str, error: Exception) -> None:
    """Make the trainer's registry raise ``error`` at the second call of ``method``."""
    original, calls = getattr(bench.trainer.registry, method), []

    def second_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise error
        return original(*args, **kwargs)

    setattr(bench.trainer.registry, method, second_fails)


@pytest.fixture
def asked(
    make_stream: MakeStream, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> Iterator[Bench]:
    """A trainer of a stream with two candidates (three challengers a retrain), asked for a
    retrain over 300 labelled events."""
    stream = make_stream("s", candidates=TWO_CANDIDATES, learning={"max_challengers": 3})
    bench, replay = _ready(stream, make_runtime, publish_samples)
    request(bench, bench.champion, replay=replay, since_change=150)
    yield bench
    bench.trainer.close()


def test_challengers_registered_before_an_outage_are_announced_when_the_request_is_read_again(
    asked: Bench, read_topic: ReadTopic
) -> None:
    bench = asked
    # Redis gone between two challengers: the step fails and the request is read again. The
    # first challenger stood in the registry unannounced: never raced, never judged, and every
    # later request skipped while it stood ("a race runs").
    fail_the_second(bench, "add_challenger", StoreUnavailable("redis restarting"))
    with pytest.raises(StoreUnavailable):
        bench.trainer.step()
    del bench.trainer.registry.add_challenger  # Redis is back

    bench.trainer.step()

    standing = set(bench.registry.challengers())
    assert len(standing) == 1
    assert {(e.action, e.version) for e in decisions(bench, read_topic)} == {
        ("challenger_trained", version) for version in standing
    }
    bench.trainer.step()  # nothing read again: announced once
    assert len(decisions(bench, read_topic)) == 1


def test_a_candidate_that_cannot_be_registered_leaves_the_others_racing(
    asked: Bench, read_topic: ReadTopic
) -> None:
    bench = asked
    # A model pickle gives up on (as on a Hoeffding regression tree's chain of split
    # candidates before they were written flat): the request was dead-lettered, and the
    # challengers registered before it stood unannounced.
    fail_the_second(bench, "register", RecursionError("maximum recursion depth exceeded"))

    bench.trainer.step()

    standing = set(bench.registry.challengers())
    assert len(standing) >= 2
    assert {(e.action, e.version) for e in decisions(bench, read_topic)} == {
        ("challenger_trained", version) for version in standing
    }
    assert not read_topic(bench.runtime, topics.DEADLETTER)


def test_stale_requests_and_requests_during_a_race_are_skipped(
    bench: Bench, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    publish_samples(bench.runtime, bench.stream, 50)
    replay = {"feedback": whole(bench.runtime, topics.feedback("s"))}
    request(bench, bench.champion + 1, "for another champion", replay=replay)
    other = ModelEvent(action="retrain_requested", stream="other", version=bench.champion)
    bench.runtime.bus.publish([encode(topics.MODELS, other, source="/test")])
    bench.trainer.step()
    assert bench.registry.challengers() == ()

    request(bench, bench.champion, "first", replay=replay)
    request(bench, bench.champion, "second", replay=replay)
    bench.trainer.step()

    causes = {bench.registry.get(v).cause["request"] for v in bench.registry.challengers()}
    assert causes == {"first"}


def test_a_preempting_request_rejects_the_racing_challengers_and_retrains(
    bench: Bench, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    publish_samples(bench.runtime, bench.stream, 50)
    replay = {"feedback": whole(bench.runtime, topics.feedback("s"))}
    old = challenger(bench)
    request(bench, bench.champion, "drift", replay=replay)
    bench.trainer.step()
    assert bench.registry.challengers() == (old,)  # a plain request waits for the race

    request(bench, bench.champion, "preempt", replay=replay, preempt=True)
    bench.trainer.step()

    assert bench.registry.get(old).status == "rejected"
    fresh = bench.registry.challengers()
    assert fresh and {bench.registry.get(v).cause["request"] for v in fresh} == {"preempt"}
    [rejected] = [e for e in decisions(bench, read_topic) if e.action == "rejected"]
    assert rejected.version == old and rejected.evidence["stage"] == "preempted"


def test_a_preempting_request_lets_a_challenger_ahead_of_the_champion_race_on(
    bench: Bench, publish_samples: PublishSamples, read_topic: ReadTopic
) -> None:
    publish_samples(bench.runtime, bench.stream, 50)
    replay = {"feedback": whole(bench.runtime, topics.feedback("s"))}
    ahead, behind = challenger(bench), challenger(bench)
    for version, right in ((ahead, True), (behind, False)):
        race = RecentRace("binary", version, bench.champion)
        for _ in range(20):
            race.update(True, right, not right)
        key = race_key("s", version, bench.champion)
        bench.runtime.store.hset(key, mapping=race.to_dict())  # type: ignore[arg-type]

    request(bench, bench.champion, "preempt", replay=replay, preempt=True)
    bench.trainer.step()

    assert bench.registry.get(behind).status == "rejected"
    assert bench.registry.challengers() == (ahead,)  # no retrain while it races
    assert [e.version for e in decisions(bench, read_topic) if e.action == "rejected"] == [behind]


def challenger(bench: Bench) -> int:
    version = bench.registry.register(
        tree.HoeffdingTreeClassifier(), spec="tree", parent=bench.champion
    ).version
    bench.registry.add_challenger(version)
    return version


def race(
    bench: Bench, challenger: int, baseline: int, events: list[tuple[bool, bool]], window: int = 500
) -> None:
    """Write the race the learner would keep: per event, (challenger right, baseline right)."""
    kept = RecentRace("binary", challenger, baseline, window=window)
    for challenger_right, baseline_right in events:
        kept.update(True, challenger_right, baseline_right)
    key = race_key("s", challenger, baseline)
    bench.runtime.store.delete(key)
    bench.runtime.store.hset(key, mapping=dict(kept.to_dict()))  # type: ignore[arg-type]


def better(count: int) -> list[tuple[bool, bool]]:
    return [(True, i % 2 == 0) for i in range(count)]


def worse(count: int) -> list[tuple[bool, bool]]:
    return [(i % 2 == 0, True) for i in range(count)]


def even(count: int) -> list[tuple[bool, bool]]:
    return [(i % 2 == 0, i % 2 == 0) for i in range(count)]


def test_a_challenger_that_clearly_wins_is_validated_and_promoted(
    bench: Bench, read_topic: ReadTopic
) -> None:
    winner, other = challenger(bench), challenger(bench)
    race(bench, winner, bench.champion, better(200))
    race(bench, other, bench.champion, even(200))

    assert bench.trainer.step() == 1

    assert bench.registry.champion() == winner
    assert bench.registry.get(bench.champion).status == "retired"
    assert bench.registry.get(winner).metrics["challenger_score"] == 1.0
    assert bench.registry.challengers() == (other,)  # it races on, against the new champion
    made = decisions(bench, read_topic)
    assert [(e.action, e.version, e.previous_version) for e in made] == [
        ("validated", winner, bench.champion),
        ("promoted", winner, bench.champion),
    ]
    assert all(e.evidence["stage"] == "gate" and e.at_event == "e-last" for e in made)
    watch = orjson.loads(bench.runtime.store.get("meander:s:watch") or b"null")
    assert watch == {"new": winner, "old": bench.champion}


def test_the_best_of_several_winners_is_promoted(bench: Bench) -> None:
    good, best = challenger(bench), challenger(bench)
    race(bench, good, bench.champion, [(True, i % 3 != 0) for i in range(300)])
    race(bench, best, bench.champion, better(300))

    bench.trainer.step()

    assert bench.registry.champion() == best


def test_a_race_is_judged_at_every_step_on_its_bet(bench: Bench, read_topic: ReadTopic) -> None:
    version = challenger(bench)
    race(bench, version, bench.champion, even(50))
    assert bench.trainer.step() == 0  # too short to be judged

    race(bench, version, bench.champion, even(100) + better(6))
    assert bench.trainer.step() == 0  # ahead, but three wins are no evidence yet
    assert bench.registry.champion() == bench.champion

    # The next step judges it again, not min_samples events later: the bet on it stays sound
    # however often it is looked at.
    race(bench, version, bench.champion, even(100) + better(40))
    assert bench.trainer.step() == 1
    assert bench.registry.champion() == version
    promoted = [e for e in decisions(bench, read_topic) if e.action == "promoted"]
    assert promoted[0].evidence["wealth"] >= promoted[0].evidence["threshold"] == 4 / 0.05


def test_a_worse_challenger_is_rejected_only_after_its_patience(
    bench: Bench, read_topic: ReadTopic
) -> None:
    version = challenger(bench)
    race(bench, version, bench.champion, worse(PATIENCE - MIN_SAMPLES))

    bench.trainer.step()
    assert bench.registry.get(version).status == "challenger"
    assert decisions(bench, read_topic) == []

    race(bench, version, bench.champion, worse(PATIENCE))
    bench.trainer.step()

    assert bench.registry.get(version).status == "rejected"
    assert bench.registry.challengers() == ()
    [rejected] = decisions(bench, read_topic)
    assert (rejected.action, rejected.version, rejected.previous_version) == (
        "rejected",
        version,
        bench.champion,
    )
    assert "significantly worse" in rejected.reason


def promoted_with_watch(bench: Bench) -> tuple[int, int]:
    old = bench.champion
    new = challenger(bench)
    bench.registry.promote(new)
    bench.runtime.store.set("meander:s:watch", orjson.dumps({"new": new, "old": old}))
    return new, old


def test_a_new_champion_worse_than_the_old_one_is_rolled_back(
    bench: Bench, read_topic: ReadTopic
) -> None:
    new, old = promoted_with_watch(bench)
    race(bench, new, old, worse(ROLLBACK_WINDOW - 1), window=ROLLBACK_WINDOW)
    bench.trainer.step()
    assert bench.registry.champion() == new  # still watching

    race(bench, new, old, worse(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)
    bench.trainer.step()

    assert bench.registry.champion() == old
    assert bench.registry.get(new).status == "rolled_back"
    [event] = decisions(bench, read_topic)
    assert (event.action, event.version, event.previous_version) == ("rolled_back", old, new)
    assert event.evidence["stage"] == "rollback_window"
    assert bench.runtime.store.get("meander:s:watch") is None
    assert not bench.runtime.store.exists(race_key("s", new, old))


def test_a_new_champion_that_holds_up_is_validated_at_the_end_of_the_watch(
    bench: Bench, read_topic: ReadTopic
) -> None:
    new, old = promoted_with_watch(bench)
    race(bench, new, old, even(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)

    bench.trainer.step()

    assert bench.registry.champion() == new
    [event] = decisions(bench, read_topic)
    assert (event.action, event.version, event.evidence["stage"]) == (
        "validated",
        new,
        "rollback_window",
    )
    assert bench.runtime.store.get("meander:s:watch") is None


def test_a_watch_whose_champion_changed_since_is_dropped(
    bench: Bench, read_topic: ReadTopic
) -> None:
    new, old = promoted_with_watch(bench)
    bench.registry.roll_back(old, reason="a person decided")
    race(bench, new, old, worse(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)

    bench.trainer.step()

    assert bench.runtime.store.get("meander:s:watch") is None
    assert decisions(bench, read_topic) == []


def test_a_roll_back_is_not_followed_by_a_promotion_judged_against_the_demoted_champion(
    bench: Bench,
) -> None:
    new, old = promoted_with_watch(bench)
    late = challenger(bench)  # trained after a drift of the new champion, during the watch
    race(bench, new, old, worse(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)
    race(bench, late, new, better(200))  # it beats the new champion, which is being demoted

    bench.trainer.step()

    assert bench.registry.champion() == old
    assert bench.registry.challengers() == (late,)  # it must now race the restored one


def _promotion(bench: Bench) -> list[tuple[str, int, int | None]]:
    winner = challenger(bench)
    race(bench, winner, bench.champion, better(200))
    return [("validated", winner, bench.champion), ("promoted", winner, bench.champion)]


def _roll_back(bench: Bench) -> list[tuple[str, int, int | None]]:
    new, old = promoted_with_watch(bench)
    race(bench, new, old, worse(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)
    return [("rolled_back", old, new)]


def _watch_ended(bench: Bench) -> list[tuple[str, int, int | None]]:
    new, old = promoted_with_watch(bench)
    race(bench, new, old, even(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)
    return [("validated", new, old)]


def _rejection(bench: Bench) -> list[tuple[str, int, int | None]]:
    version = challenger(bench)
    race(bench, version, bench.champion, worse(PATIENCE))
    return [("rejected", version, bench.champion)]


@pytest.mark.parametrize("decide", [_promotion, _roll_back, _watch_ended, _rejection])
def test_a_decision_of_a_trainer_killed_before_announcing_it_is_announced_by_the_next(
    bench: Bench,
    read_topic: ReadTopic,
    monkeypatch: pytest.MonkeyPatch,
    decide: Callable[[Bench], list[tuple[str, int, int | None]]],
) -> None:
    expected = decide(bench)

    def broker_down(*_: object, **__: object) -> None:
        raise BusUnavailable("no Kafka broker answered")

    # The decision is in the registry; the broker does not take its announcement, and the
    # trainer is killed before the next try: what it held in memory is gone.
    monkeypatch.setattr(bench.runtime.bus, "send", broker_down)
    with pytest.raises(BusUnavailable):
        bench.trainer.step()
    monkeypatch.undo()
    assert decisions(bench, read_topic) == []
    for key in bench.runtime.store.keys("meander:s:race:*"):
        bench.runtime.store.delete(key)  # the learner races anew once it hears of the decision
    bench.trainer.close()
    bench.trainer = Trainer(bench.runtime, bench.stream)

    bench.trainer.step()
    bench.trainer.step()

    made = decisions(bench, read_topic)
    assert [(e.action, e.version, e.previous_version) for e in made] == expected


def test_an_unreadable_unannounced_decision_is_left_and_the_others_announced(
    bench: Bench, read_topic: ReadTopic
) -> None:
    # One another writer's version queued (an action this one does not know), or Redis damaged:
    # reading it raised at every step, and the trainer announced and judged nothing more.
    unannounced = bench.registry.unannounced
    unknown = b'{"id": "x", "time": 0, "source": "/new", "event": {"action": "retired"}}'
    bench.runtime.store.zadd(unannounced.key, {b"not json": 1, unknown: 2})
    expected = _promotion(bench)

    bench.trainer.step()

    made = decisions(bench, read_topic)
    assert [(e.action, e.version, e.previous_version) for e in made] == expected
    assert set(bench.runtime.store.zrange(unannounced.key, 0, -1)) == {b"not json", unknown}


def decided(action: str) -> float:
    labels = {"stream": "s", "action": action}
    return REGISTRY.get_sample_value("meander_model_decisions_total", labels) or 0.0


def test_decisions_are_counted_by_action_when_published_and_reads_by_batch(bench: Bench) -> None:
    actions = ("validated", "promoted", "rolled_back")
    before = {action: decided(action) for action in actions}
    consumed = ("meander_events_consumed_total", {"component": "trainer", "stream": "s"})
    read_before = REGISTRY.get_sample_value(*consumed) or 0.0
    winner = challenger(bench)
    race(bench, winner, bench.champion, better(200))
    request(bench, 999)  # stale: read and skipped

    bench.trainer.step()
    race(bench, winner, bench.champion, worse(ROLLBACK_WINDOW), window=ROLLBACK_WINDOW)
    bench.trainer.step()

    after = {action: decided(action) for action in actions}
    assert {a: after[a] - before[a] for a in actions} == dict.fromkeys(actions, 1.0)
    # The request, then (next step) its own validation and promotion, read back from the topic.
    assert (REGISTRY.get_sample_value(*consumed) or 0.0) - read_before == 3


def _ready(
    stream: StreamConfig, make_runtime: MakeRuntime, publish_samples: PublishSamples
) -> tuple[Bench, dict[str, Any]]:
    """A trainer of ``stream`` with a tree as champion, after 300 labelled events, and the
    replay of all of them."""
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    champion = registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    registry.promote(champion)
    publish_samples(runtime, stream, 300)
    bench = Bench(runtime, stream, registry, Trainer(runtime, stream), champion)
    replay = {
        "events": whole(runtime, topics.events("s")),
        "feedback": whole(runtime, topics.feedback("s")),
    }
    return bench, replay
