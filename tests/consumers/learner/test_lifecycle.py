"""What the learner announces (drift, retrain requests, warnings) and how it follows decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from river import drift, tree

from meander import topics
from meander.consumers.learner.learning import LearnerState
from meander.consumers.learner.lifecycle import (
    MAX_FOLLOW_UPS,
    LifecycleNotices,
    apply_model_event,
    replay_ranges,
)
from meander.events import Alert, ModelEvent
from meander.exceptions import RegistryError
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime

if TYPE_CHECKING:
    from meander.models.race import RecentRace
    from tests.consumers.conftest import MakeRuntime, MakeStream, ReadTopic

REPLAY_WINDOW = 10


@dataclass
class World:
    runtime: Runtime
    registry: Registry
    notices: LifecycleNotices
    state: LearnerState


@pytest.fixture
def world(make_stream: MakeStream, make_runtime: MakeRuntime) -> World:
    stream = make_stream("s", learning={"replay_window": REPLAY_WINDOW})
    runtime = make_runtime(stream)
    registry = Registry(runtime.store, "s", signer_for(runtime.settings))
    champion = registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    registry.promote(champion)
    state = LearnerState.start(
        "binary",
        champion=champion,
        model=tree.HoeffdingTreeClassifier(),
        detector=drift.ADWIN(),
        ttl_seconds=60,
        max_pending=100,
        kept=REPLAY_WINDOW,
    )
    return World(runtime, registry, LifecycleNotices(runtime.bus, stream, registry), state)


def labelled(state: LearnerState, count: int) -> None:
    """``count`` labels learned; events on partitions 0-1, their labels on partition 2."""
    for _ in range(count):
        i = state.labels
        state.recent.append((i % 2, 100 + i, 2, i))
        state.labels += 1


def racing_since_before_the_window(world: World) -> RecentRace:
    """Challenger 9 against the champion after 20 labels, raced since before the detector's
    window began."""
    world.state.add_challenger(9, tree.HoeffdingTreeClassifier())
    labelled(world.state, 20)
    race = world.state.races[(9, world.state.champion)]
    race.seen = int(getattr(world.state.detector, "width", 0)) + 1
    return race


def models_events(world: World, read_topic: ReadTopic) -> list[ModelEvent]:
    return [
        e.payload
        for e in read_topic(world.runtime, topics.MODELS)
        if isinstance(e.payload, ModelEvent)
    ]


def alerts(world: World, read_topic: ReadTopic) -> list[Alert]:
    return [
        e.payload for e in read_topic(world.runtime, topics.ALERTS) if isinstance(e.payload, Alert)
    ]


def test_replay_ranges_cover_the_last_window_per_partition() -> None:
    state = LearnerState.start(
        "binary", champion=1, model=None, detector=drift.ADWIN(), ttl_seconds=1, max_pending=1
    )
    state.recent.extend([(0, 5, 1, 7), (1, 3, 1, 8), (0, 9, 0, 2), (0, 6, 1, 9)])

    assert replay_ranges(state, 3) == {
        "events": {"0": [6, 10], "1": [3, 4]},
        "feedback": {"0": [2, 3], "1": [8, 10]},
    }
    assert replay_ranges(state, 0)["events"] == {"0": [5, 10], "1": [3, 4]}  # [-0:] is all


def test_a_drift_raises_an_alert_and_a_retrain_request_naming_the_recent_window(
    world: World, read_topic: ReadTopic
) -> None:
    labelled(world.state, 25)

    world.notices.drift(world.state, "e25")

    alerts = [e for e in read_topic(world.runtime, topics.ALERTS)]
    assert len(alerts) == 1
    alert = alerts[0].payload
    assert isinstance(alert, Alert)
    assert (alert.kind, alert.stream, alert.version, alert.at_event) == (
        "concept_drift",
        "s",
        world.state.champion,
        "e25",
    )
    [request] = models_events(world, read_topic)
    assert (request.action, request.version, request.at_event) == (
        "retrain_requested",
        world.state.champion,
        "e25",
    )
    assert request.evidence["alert"] == alerts[0].id
    assert request.evidence["labels"] == 25
    assert request.evidence["window"] == REPLAY_WINDOW
    assert request.evidence["replay"] == {
        "events": {"0": [116, 125], "1": [115, 124]},
        "feedback": {"2": [15, 25]},
    }
    assert (world.state.drift_at, world.state.retrain_requested_at) == (25, 25)


def test_no_second_request_while_the_first_waits_unless_it_waited_very_long(
    world: World, read_topic: ReadTopic
) -> None:
    labelled(world.state, 20)
    world.notices.drift(world.state, "a")
    labelled(world.state, 5 * REPLAY_WINDOW)
    world.notices.drift(world.state, "b")  # the trainer may still be at work
    labelled(world.state, 1)
    world.notices.drift(world.state, "c")  # no answer after 5 replay windows: ask again

    assert [e.at_event for e in models_events(world, read_topic)] == ["a", "c"]
    assert len(read_topic(world.runtime, topics.ALERTS)) == 3


def test_a_drift_during_a_race_is_only_an_alert_but_arms_the_follow_up(
    world: World, read_topic: ReadTopic
) -> None:
    world.state.add_challenger(9, tree.HoeffdingTreeClassifier())
    labelled(world.state, 20)
    world.state.follow_ups = 1

    world.notices.drift(world.state, "x")

    assert models_events(world, read_topic) == []
    assert len(read_topic(world.runtime, topics.ALERTS)) == 1
    assert (world.state.drift_at, world.state.follow_ups) == (20, 0)


def test_a_drift_after_a_race_began_asks_to_replace_its_challengers(
    world: World, read_topic: ReadTopic
) -> None:
    racing_since_before_the_window(world)

    world.notices.drift(world.state, "x")

    [asked] = models_events(world, read_topic)
    assert (asked.action, asked.evidence["preempt"]) == ("retrain_requested", True)
    assert world.state.retrain_requested_at == 20


@pytest.mark.parametrize(("seen", "preempted"), [(101, True), (100, False)])
def test_a_drift_replaces_challengers_that_raced_a_judged_race_without_getting_ahead(
    world: World, read_topic: ReadTopic, seen: int, preempted: bool
) -> None:
    for _ in range(500):
        world.state.detector.update(0.0)  # a window far longer than a race is judged on
    race = racing_since_before_the_window(world)
    race.seen = seen  # min_samples is 100: judged on 100 shared events, and not ahead

    world.notices.drift(world.state, "x")

    # ADWIN's window after a change holds much of the concept before it: a challenger that
    # started inside it may have learned nothing else.
    assert world.state.detector.width > seen
    asked = models_events(world, read_topic)
    assert [e.evidence["preempt"] for e in asked] == ([True] if preempted else [])


def test_a_drift_lets_a_challenger_ahead_of_the_champion_race_on(
    world: World, read_topic: ReadTopic
) -> None:
    race = racing_since_before_the_window(world)
    for _ in range(10):
        race.update(True, True, False)  # right where the champion errs: ahead

    world.notices.drift(world.state, "x")

    assert models_events(world, read_topic) == []  # no request: its race goes on
    assert len(read_topic(world.runtime, topics.ALERTS)) == 1


def test_a_follow_up_asks_again_for_the_labels_since_the_drift(
    world: World, read_topic: ReadTopic
) -> None:
    labelled(world.state, 30)
    world.state.drift_at, world.state.follow_up_at = 26, 29

    world.notices.follow_up(world.state, "e30")

    [request] = models_events(world, read_topic)
    assert request.action == "retrain_requested"
    assert request.evidence["since_change"] == 4
    assert request.evidence["alert"] is None
    assert world.state.follow_ups == 1
    assert world.state.follow_up_at is None


def test_no_follow_up_while_a_challenger_races_or_without_a_drift(
    world: World, read_topic: ReadTopic
) -> None:
    labelled(world.state, 30)
    world.state.follow_up_at = 29
    world.notices.follow_up(world.state, "no drift")
    world.state.drift_at = 20
    world.state.add_challenger(9, tree.HoeffdingTreeClassifier())
    world.notices.follow_up(world.state, "racing")

    assert models_events(world, read_topic) == []
    assert world.state.follow_ups == 0


def test_warnings_are_spaced_by_a_replay_window(world: World, read_topic: ReadTopic) -> None:
    for _ in range(3):
        world.notices.warning(world.state, f"w{world.state.labels}")
        labelled(world.state, REPLAY_WINDOW // 2)

    assert [(a.kind, a.at_event) for a in alerts(world, read_topic)] == [
        ("concept_drift_warning", "w0"),
        ("concept_drift_warning", "w10"),
    ]


def test_a_drift_caught_within_the_window_after_a_warning_replays_the_labels_since(
    world: World, read_topic: ReadTopic
) -> None:
    labelled(world.state, 20)
    world.notices.warning(world.state, "w")
    labelled(world.state, 4)
    world.state.detector = _adwin_of_width(50)

    world.notices.drift(world.state, "d")

    [request] = models_events(world, read_topic)
    assert request.evidence["since_change"] == 4


def _adwin_of_width(width: int) -> Any:
    detector = drift.ADWIN()
    for _ in range(width):
        detector.update(0.0)
    return detector


def event(action: str, version: int, stream: str = "s", **fields: Any) -> ModelEvent:
    return ModelEvent(action=action, stream=stream, version=version, **fields)


def test_a_trained_challenger_joins_from_the_registry(world: World) -> None:
    challenger = world.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version

    apply_model_event(world.state, event("challenger_trained", challenger), world.registry, "s")

    assert challenger in world.state.models
    assert (challenger, world.state.champion) in world.state.races


def test_events_of_other_streams_or_without_a_version_are_ignored(world: World) -> None:
    before = dict(world.state.models)

    apply_model_event(world.state, event("challenger_trained", 1, stream="t"), world.registry, "s")
    apply_model_event(
        world.state, ModelEvent(action="retrain_requested", stream="s"), world.registry, "s"
    )
    apply_model_event(
        world.state,
        Alert(kind="concept_drift", stream="s", severity="info", statistic="x", value=1.0),
        world.registry,
        "s",
    )

    assert world.state.models == before


def test_a_rejection_drops_the_challenger_and_arms_a_follow_up_after_a_drift(
    world: World,
) -> None:
    world.state.add_challenger(7, tree.HoeffdingTreeClassifier())
    world.state.add_challenger(8, tree.HoeffdingTreeClassifier())
    labelled(world.state, 12)
    apply_model_event(world.state, event("rejected", 7), world.registry, "s")
    assert 7 not in world.state.models and world.state.follow_up_at is None  # no drift

    world.state.drift_at = 5
    apply_model_event(world.state, event("rejected", 8), world.registry, "s")

    assert 8 not in world.state.models and world.state.follow_up_at == 12


def test_follow_ups_stop_after_the_maximum(world: World) -> None:
    world.state.add_challenger(7, tree.HoeffdingTreeClassifier())
    world.state.drift_at, world.state.follow_ups = 5, MAX_FOLLOW_UPS

    apply_model_event(world.state, event("rejected", 7), world.registry, "s")

    assert world.state.follow_up_at is None


def test_a_promotion_loads_a_model_the_state_does_not_have(world: World) -> None:
    old = world.state.champion
    new = world.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    world.registry.promote(new)  # the registry holds a decision before it is announced

    apply_model_event(world.state, event("promoted", new), world.registry, "s")
    apply_model_event(world.state, event("promoted", new), world.registry, "s")  # again: no-op

    assert world.state.champion == new and world.state.watch == (new, old)


def test_a_champion_change_the_registry_does_not_hold_is_not_followed(world: World) -> None:
    # Any client can write to meander.models, and an announcement may come twice (the second
    # after a later decision): a learner that followed a promotion the registry does not hold
    # trained and raced a champion the predictors do not serve, and the trainer, which judges
    # races against the registry's champion, found none of them.
    old = world.state.champion
    other = world.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version

    apply_model_event(world.state, event("promoted", other), world.registry, "s")
    apply_model_event(
        world.state, event("rolled_back", other, previous_version=old), world.registry, "s"
    )

    assert world.state.champion == old == world.registry.champion()
    assert set(world.state.models) == {old} and world.state.watch is None
    with pytest.raises(RegistryError, match="has no model version 99"):  # dead-lettered
        apply_model_event(world.state, event("promoted", 99), world.registry, "s")


def test_a_rejection_of_a_challenger_the_registry_still_races_is_not_followed(
    world: World,
) -> None:
    # A learner that dropped a challenger the registry still lists stopped writing its race:
    # the trainer never judged it, and no retrain came while it stood ("a race runs").
    racing = world.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    world.registry.add_challenger(racing)
    world.state.add_challenger(racing, tree.HoeffdingTreeClassifier())

    apply_model_event(world.state, event("rejected", racing), world.registry, "s")

    assert racing in world.state.models


def test_a_roll_back_and_the_end_of_a_watch_are_followed(world: World) -> None:
    old = world.state.champion
    world.state.promote(5, tree.HoeffdingTreeClassifier())

    apply_model_event(
        world.state, event("rolled_back", old, previous_version=5), world.registry, "s"
    )
    assert world.state.champion == old and 5 not in world.state.models

    world.state.promote(6, tree.HoeffdingTreeClassifier())
    apply_model_event(world.state, event("validated", 6), world.registry, "s")  # the gate's
    assert world.state.watch == (6, old)
    apply_model_event(
        world.state,
        event("validated", 6, evidence={"stage": "rollback_window"}),
        world.registry,
        "s",
    )
    assert world.state.watch is None and set(world.state.models) == {6}


def test_a_manual_promotion_keeps_no_watch_and_only_the_models_still_racing(
    world: World,
) -> None:
    old = world.state.champion
    world.state.add_challenger(7, tree.HoeffdingTreeClassifier())
    world.state.promote(5, tree.HoeffdingTreeClassifier())  # the trainer's: watched against old
    assert world.state.watch == (5, old) and set(world.state.models) == {old, 5, 7}
    new = world.registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
    world.registry.promote(new)
    manual = {"manual": True, "by": "ops"}

    apply_model_event(world.state, event("promoted", new, evidence=manual), world.registry, "s")

    assert world.state.champion == new
    assert world.state.watch is None
    assert set(world.state.models) == {new, 7}  # neither 5 (replaced) nor old (its watch)
    assert set(world.state.races) == {(7, new)}


def test_a_manual_rollback_during_a_watch_keeps_only_the_restored_champion(world: World) -> None:
    old = world.state.champion
    world.state.promote(5, tree.HoeffdingTreeClassifier())
    world.state.promote(6, tree.HoeffdingTreeClassifier())  # the trainer's, watched against 5
    assert set(world.state.models) == {old, 5, 6}
    manual = {"manual": True, "by": "ops"}

    apply_model_event(
        world.state,
        event("rolled_back", old, previous_version=6, evidence=manual),
        world.registry,
        "s",
    )

    assert world.state.champion == old
    assert set(world.state.models) == {old}
    assert world.state.races == {}
