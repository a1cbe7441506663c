"""The learner's state: prequential evaluation of what was served, races, drift, the lifecycle."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

import pytest
from river import drift, tree

from meander.consumers.learner.detection import worse
from meander.consumers.learner.learning import LearnerState, lagging
from meander.models.inference import predict_one

Served = dict[tuple[int, str], tuple[Any, dict[str, float] | None]]


def start(detector: Any = None, task: str = "binary", **options: Any) -> LearnerState:
    return LearnerState.start(
        task,
        champion=1,
        model=tree.HoeffdingTreeClassifier(),
        detector=detector or drift.ADWIN(),
        ttl_seconds=60,
        max_pending=100,
        **options,
    )


def taught(label: Any) -> tree.HoeffdingTreeClassifier:
    """A tree that has only ever seen ``label``, so it predicts it."""
    model = tree.HoeffdingTreeClassifier()
    for i in range(5):
        model.learn_one({"x": float(i)}, label)
    return model


def champion_said(prediction: Any, version: int = 1) -> Served:
    return {(version, "champion"): (prediction, None)}


def test_served_predictions_update_each_versions_metrics_and_the_served_metric() -> None:
    state = start()
    state.add_challenger(2, tree.HoeffdingTreeClassifier())
    served: Served = {
        (1, "champion"): (True, {"True": 0.8, "False": 0.2}),
        (2, "challenger"): (False, {"False": 1.0}),
    }

    outcome = state.evaluate({"x": 1.0}, True, served)
    state.evaluate({"x": 1.0}, False, served)

    assert state.metrics[1].report()["accuracy"] == 0.5
    assert state.metrics[2].report()["accuracy"] == 0.5
    assert state.served["champion"].report()["n"] == 2
    assert state.labels == 0  # evaluating is not learning
    assert (outcome.drift, outcome.error) == (False, 0.0)


def test_a_version_served_twice_for_one_event_counts_once() -> None:
    state = start()

    state.evaluate({}, True, {(1, "champion"): (True, None), (1, "challenger"): (False, None)})

    assert state.metrics[1].report()["n"] == 1


def test_a_version_first_seen_in_a_prediction_gets_its_own_metric() -> None:
    state = start()

    state.evaluate({}, True, {(7, "champion"): (False, None)})

    assert state.metrics[7].report()["accuracy"] == 0.0
    assert 7 not in state.models


def test_the_error_is_absolute_for_regression() -> None:
    state = start(task="regression")

    assert state.evaluate({}, 5.0, champion_said(3.5)).error == 1.5
    assert state.evaluate({}, -2.0, champion_said(-0.5)).error == 1.5


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_served_none_is_no_answer_not_a_wrong_one(task: str) -> None:
    state = start(task=task)

    outcome = state.evaluate({"x": 1.0}, True if task == "binary" else 2.0, champion_said(None))
    state.late(True if task == "binary" else 2.0, 1, "champion", (None, None))

    assert math.isnan(outcome.error) and not outcome.drift
    assert state.detector.width == 0  # the error stream saw nothing
    assert 1 not in state.metrics or state.metrics[1].report()["n"] == 0
    assert "champion" not in state.served
    assert state.counts["unanswered"] == 2


def test_without_a_champion_prediction_the_detector_is_left_alone() -> None:
    state = start()

    outcome = state.evaluate({"x": 1.0}, True, {})

    assert math.isnan(outcome.error) and not outcome.drift and not outcome.warning
    assert state.detector.width == 0
    assert "champion" not in state.served


def test_a_race_scores_what_both_sides_served() -> None:
    # Both trees are untrained: had the race asked them, both would have answered None.
    state = start()
    state.add_challenger(2, tree.HoeffdingTreeClassifier())

    state.evaluate({}, True, {(1, "champion"): (False, None), (2, "challenger"): (True, None)})

    race = state.races[(2, 1)]
    assert (race.n, race.challenger_only, race.baseline_only) == (1, 1, 0)


def test_a_race_asks_a_version_that_served_none_and_skips_a_pair_without_answer() -> None:
    # v1 served None (untrained then) but has learned since: the race asks it. Scoring its
    # None as wrong would hand v2 every event (the race that promoted v2 "0.995 against 0").
    state = start()
    state.models[1] = taught(True)
    state.add_challenger(2, taught(False))

    state.evaluate(
        {"x": 1.0}, True, {(1, "champion"): (None, None), (2, "challenger"): (False, None)}
    )
    race = state.races[(2, 1)]
    assert (race.n, race.challenger_only, race.baseline_only) == (1, 0, 1)

    state.models[1] = tree.HoeffdingTreeClassifier()  # it cannot answer either
    state.evaluate(
        {"x": 1.0}, True, {(1, "champion"): (None, None), (2, "challenger"): (True, None)}
    )
    assert race.n == 1


def diverged() -> Any:
    """A linear regression whose weights overflowed: it answers NaN or -inf for good."""
    from river import linear_model, optim

    model = linear_model.LinearRegression(optimizer=optim.SGD(0.1), clip_gradient=1e300)
    for day in range(60):
        model.learn_one({"x": 736_389.0 + day}, 43.7)
    return model


def sane() -> Any:
    from river import dummy, stats

    model = dummy.StatisticRegressor(stats.Mean())
    model.learn_one({"x": 736_389.0}, 43.0)
    return model


@pytest.mark.parametrize("which", ["champion", "challenger"])
def test_a_diverged_model_loses_each_event_of_its_race(which: str) -> None:
    # Its NaN in the race's sums would make the race's gain NaN: never promoted nor rejected.
    state = start(task="regression")
    state.models[1] = diverged() if which == "champion" else sane()
    state.add_challenger(2, sane() if which == "champion" else diverged())

    for _ in range(3):
        outcome = state.evaluate({"x": 736_500.0}, 43.7, {})

    race = state.races[(2, 1)]
    assert race.n == 3 and math.isfinite(race.gain)
    assert race.gain > 0 if which == "champion" else race.gain < 0
    assert outcome.diverged is (which == "champion")  # nothing served: the learner asks it


def test_the_watched_previous_champion_answers_by_itself() -> None:
    state = start()
    state.models[1] = taught(True)
    state.promote(2, taught(False))

    state.evaluate({"x": 1.0}, True, champion_said(False, version=2))

    race = state.races[(2, 1)]
    assert (race.n, race.challenger_only, race.baseline_only) == (1, 0, 1)
    assert state.metrics[1].report()["n"] == 0  # it answered for the race only


def test_learning_trains_every_live_model_after_it_was_tested() -> None:
    state = start()
    state.add_challenger(2, tree.HoeffdingTreeClassifier())

    state.learn({"x": 1.0}, "yes")

    assert state.labels == 1
    assert {predict_one(m, {"x": 1.0}, "binary")[0] for m in state.models.values()} == {"yes"}


def errors(rising: bool, seed: int = 1) -> list[float]:
    """400 champion errors at one rate, then 400 at another: up when ``rising``."""
    rng = random.Random(seed)
    low, high = 0.1, 0.6
    first, second = (low, high) if rising else (high, low)
    return [float(rng.random() < first) for _ in range(400)] + [
        float(rng.random() < second) for _ in range(400)
    ]


DETECTORS = [
    pytest.param(lambda: drift.ADWIN(), id="ADWIN"),
    pytest.param(lambda: drift.KSWIN(seed=1), id="KSWIN"),
]


@pytest.mark.parametrize("make_detector", DETECTORS)
def test_a_rising_champion_error_is_a_drift_after_the_change_only(make_detector: Any) -> None:
    state = start(make_detector())

    drifts = [
        i
        for i, error in enumerate(errors(rising=True))
        if state.evaluate({}, True, champion_said(error == 0.0)).drift
    ]

    assert drifts and drifts[0] >= 400


@pytest.mark.parametrize("make_detector", DETECTORS)
def test_a_falling_champion_error_is_no_drift(make_detector: Any) -> None:
    state, plain = start(make_detector()), make_detector()
    fired = False
    for error in errors(rising=False):
        assert not state.evaluate({}, True, champion_said(error == 0.0)).drift
        plain.update(error)
        fired = fired or plain.drift_detected

    assert fired  # the detector alone did fire: the learner told a fall from a rise


@pytest.mark.parametrize("make_detector", DETECTORS)
def test_worse_reports_only_rises(make_detector: Any) -> None:
    rising, falling = make_detector(), make_detector()

    assert any(worse(rising, e) for e in errors(rising=True))
    assert not any(worse(falling, e) for e in errors(rising=False))


def test_adwin_warns_through_a_more_sensitive_twin_before_it_drifts() -> None:
    state = start()
    warned: list[int] = []
    drifted: list[int] = []
    for i, error in enumerate(errors(rising=True)):
        outcome = state.evaluate({}, True, champion_said(error == 0.0))
        (warned if outcome.warning else []).append(i)
        (drifted if outcome.drift else []).append(i)

    assert warned and drifted and warned[0] <= drifted[0]


def test_a_challenger_races_the_champion_and_a_new_one_resets_the_retrain_request() -> None:
    state = start(race_window=50)
    state.retrain_requested_at = 10

    state.add_challenger(2, tree.HoeffdingTreeClassifier())

    assert set(state.races) == {(2, 1)} and state.races[(2, 1)].window == 50
    assert state.retrain_requested_at is None
    assert state.metrics[2].report()["n"] == 0


def test_promote_swaps_the_champion_rebases_the_races_and_watches_the_old_one() -> None:
    state = start(race_window=50, rollback_window=300)
    state.add_challenger(2, tree.HoeffdingTreeClassifier())
    state.add_challenger(3, tree.HoeffdingTreeClassifier())
    state.evaluate({}, True, {(1, "champion"): (True, None), (3, "challenger"): (False, None)})
    old_detector = state.detector
    state.drift_at, state.follow_up_at, state.retrain_requested_at = 5, 6, 7

    state.promote(2, None)

    assert state.champion == 2
    assert state.watch == (2, 1)
    assert set(state.races) == {(3, 2), (2, 1)}
    assert state.races[(3, 2)].n == 0  # a race against another champion starts over
    assert (state.races[(3, 2)].window, state.races[(2, 1)].window) == (50, 300)
    assert set(state.models) == {1, 2, 3}  # the old champion learns on, for the watch
    assert state.detector is not old_detector and state.detector.width == 0
    # The drift episode stays open (until the champion errs as little as before it).
    assert marks(state) == (5, None, None) and state.promoted_at == state.labels


def marks(state: LearnerState) -> tuple[int | None, ...]:
    return (state.drift_at, state.follow_up_at, state.retrain_requested_at)


def test_promoting_a_version_the_state_never_had_takes_the_model_given() -> None:
    state = start()
    model = taught(True)

    state.promote(5, model)

    assert state.champion == 5 and state.models[5] is model
    assert 5 in state.metrics and state.watch == (5, 1)


def test_roll_back_restores_the_old_champion_and_drops_the_demoted_one() -> None:
    state = start()
    state.promote(2, taught(True))
    old_detector = state.detector

    state.roll_back(1, 2, None)

    assert state.champion == 1 and state.watch is None
    assert set(state.models) == {1} and state.races == {}
    assert state.detector is not old_detector


def test_a_challenger_trained_during_the_watch_races_the_champion_restored_by_a_roll_back() -> None:
    state = start(race_window=50)
    state.promote(2, taught(True))
    state.add_challenger(3, taught(False))  # a drift of v2 during the watch asked for it

    state.roll_back(1, 2, None)

    # Otherwise v3 learns forever in no race: the trainer can never judge it, and while it is
    # a challenger in the registry every later retrain request is skipped.
    assert set(state.races) == {(3, 1)}
    assert state.races[(3, 1)].window == 50
    assert set(state.models) == {1, 3}


def test_a_watch_kept_early_still_holds_a_follow_up_for_its_whole_window() -> None:
    # A follow-up retrain warm-starts challengers on the labels since the drift: ending the
    # watch early must not bring it sooner, with fewer labels to learn.
    state = start(rollback_window=300)
    state.labels = 1_000
    state.promote(2, taught(True))
    assert state.races[(2, 1)].tolerance == 0.02  # a classifier's watch bets on "no worse"

    state.end_watch()
    state.labels = 1_300

    assert state.races == {} and not state.settled()
    state.labels += 1
    assert state.settled()
    state.promote(3, taught(False))
    state.roll_back(2, 3, None)
    assert state.settled()  # a roll back ends the watch for good


def test_the_replaced_champion_races_with_its_answer_when_the_event_came() -> None:
    # The new champion's answer was served when the event came: the old one's is taken then
    # too, not when the label comes, after it has learned the labels in between.
    state = start()
    state.join.add_event("e", {"x": 1.0}, timestamp_ms=0, partition=0, offset=0)
    state.promote(2, taught(True))  # the old champion, taught(False) below, says False
    state.models[1] = taught(False)
    state.join.add_event("f", {"x": 1.0}, timestamp_ms=1, partition=0, offset=1)
    state.answer_watched("f", {"x": 1.0})
    for _ in range(50):  # then it learns that the answer is True
        state.models[1].learn_one({"x": 1.0}, True)

    state.join.add_prediction("f", version=2, role="champion", prediction=(True, None))
    state.join.add_prediction("e", version=2, role="champion", prediction=(True, None))
    for event_id in ("f", "e"):
        entry = state.join.take(event_id)
        assert entry is not None
        state.evaluate(entry.features, True, entry.served)

    watch = state.races[(2, 1)]
    # "f" was answered False when it came; "e", which came before the watch, as it stands.
    assert (watch.n, watch.challenger_only, watch.both_right) == (2, 1, 1)
    assert set(state.metrics) == {1, 2} and state.metrics[1].report()["n"] == 0


def test_a_regressors_watch_bets_on_an_mae_at_most_the_tolerance_larger() -> None:
    state = start(task="regression", rollback_tolerance=0.05)
    state.promote(2, None)
    watch = state.races[(2, 1)]
    assert watch.tolerance == 0.05 and watch.no_worse is not None


def test_drop_takes_a_challenger_out_of_the_state_but_never_the_champion() -> None:
    state = start()
    state.add_challenger(2, tree.HoeffdingTreeClassifier())
    state.add_challenger(3, tree.HoeffdingTreeClassifier())

    state.drop(1)
    state.drop(2)

    assert set(state.models) == {1, 3} and set(state.races) == {(3, 1)}


def test_dropping_the_watched_version_ends_the_watch() -> None:
    state = start()
    state.promote(2, taught(True))

    state.drop(1)

    assert state.watch is None and state.races == {} and set(state.models) == {2}


def test_end_watch_forgets_the_old_champion() -> None:
    state = start()
    state.promote(2, taught(True))
    state.add_challenger(3, tree.HoeffdingTreeClassifier())

    state.end_watch()
    state.end_watch()  # nothing to end: no change

    assert state.watch is None
    assert set(state.models) == {2, 3} and set(state.races) == {(3, 2)}


def summary(state: LearnerState, probes: list[dict[str, float]]) -> dict[str, Any]:
    """What a state would do and report next: equal summaries, equal learners."""
    return {
        "champion": state.champion,
        "labels": state.labels,
        "watch": state.watch,
        "metrics": {v: m.report() for v, m in state.metrics.items()},
        "served": {k: m.report() for k, m in state.served.items()},
        "races": {k: r.to_dict() for k, r in state.races.items()},
        "detector": (state.detector.width, state.detector.estimation),
        "pending": list(state.join.pending),
        "predictions": {
            v: [predict_one(m, x, state.task) for x in probes] for v, m in state.models.items()
        },
    }


def test_a_pickled_state_goes_on_exactly_as_the_original() -> None:
    rng = random.Random(3)
    xs = [{"a": rng.random(), "b": rng.random()} for _ in range(600)]
    stream = [(x, x["a"] > x["b"] if i < 300 else x["a"] < 0.3) for i, x in enumerate(xs)]
    probes = xs[:20]

    def feed(state: LearnerState, part: list[tuple[dict[str, float], bool]]) -> None:
        for i, (x, y) in enumerate(part):
            state.join.add_event(str(i), x, timestamp_ms=i, partition=0, offset=i)
            served = {
                (v, "champion" if v == state.champion else "challenger"): predict_one(
                    m, x, "binary"
                )
                for v, m in state.models.items()
            }
            state.evaluate(x, y, served)
            state.learn(x, y)

    state = start(race_window=50)
    feed(state, stream[:200])
    state.add_challenger(2, tree.HoeffdingTreeClassifier(grace_period=50))
    feed(state, stream[200:350])
    state.promote(2, None)

    copy = pickle.loads(pickle.dumps(state))
    assert summary(copy, probes) == summary(state, probes)

    feed(state, stream[350:])
    feed(copy, stream[350:])
    assert summary(copy, probes) == summary(state, probes)


def test_a_champion_still_worse_than_before_the_drift_is_lagging_until_it_recovers() -> None:
    state = start()
    for _ in range(300):  # a champion that errs on one event in ten
        state.evaluate({}, True, {(1, "champion"): (bool(_ % 10), None)})
    assert state.error_before is None  # no drift yet
    for _ in range(400):  # then on every other one: a drift for the worse
        state.evaluate({}, True, {(1, "champion"): (bool(_ % 2), None)})
    assert state.error_before is not None and state.error_before < 0.2
    state.drift_at = state.labels = 1_000
    state.labels += 50
    assert not lagging(state, settle=100, task="binary")  # too soon after the drift
    state.labels += 100
    assert lagging(state, settle=100, task="binary")
    for _ in range(2_000):  # the champion recovers
        state.evaluate({}, True, {(1, "champion"): (True, None)})
    assert not lagging(state, settle=100, task="binary")
    assert (state.error_before, state.drift_at) == (None, None)  # the episode is closed


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_after_a_fall_in_the_error_a_regression_detector_keeps_its_window(task: str) -> None:
    # River's ADWIN empties its window on the update after a detection; after a fall (not a
    # drift for the loop) that would leave a regression champion's detector blind to a rise
    # that follows, with no level to rise from.
    state = LearnerState.start(
        task,
        champion=1,
        model=tree.HoeffdingTreeRegressor(),
        detector=drift.ADWIN(),
        ttl_seconds=60,
        max_pending=100,
    )
    rng = random.Random(3)
    fell_at = None
    for i in range(3_000):
        width = state.detector.width
        error = float(rng.random() < (0.6 if i < 1_000 else 0.1))  # the error falls
        assert not state.judge({}, 0.0, {}, error).drift
        if state.detector.width < width:  # ADWIN cut its window: a detection
            fell_at = state.detector.width
            break
    assert fell_at is not None and fell_at > 1
    state.judge({}, 0.0, {}, 0.0)
    assert state.detector.width == (fell_at + 1 if task == "regression" else 1)
