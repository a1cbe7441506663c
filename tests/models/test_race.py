"""The paired race's bookkeeping; a recent race is the paired race of its last ``window`` events,
and counts every event seen."""

from __future__ import annotations

import pickle
import random
from typing import Any, TypeVar

import fakeredis
import pytest

from meander.config import TASKS, PromotionSettings
from meander.models.race import PairedRace, RecentRace
from meander.models.validation import gate
from meander.store import memory_store

Outcome = tuple[Any, Any, Any]


def outcomes(task: str, count: int, seed: int = 5) -> list[Outcome]:
    rng = random.Random(seed)
    if task == "regression":
        return [
            (rng.gauss(0, 1), rng.choice([None, rng.gauss(0, 1)]), rng.gauss(0, 1))
            for _ in range(count)
        ]
    # A challenger that answered nothing (None) is wrong, as in PairedRace.
    return [
        (rng.randint(0, 2), rng.choice([None, rng.randint(0, 2)]), rng.randint(0, 2))
        for _ in range(count)
    ]


Race = TypeVar("Race", bound=PairedRace)


def replayed(race: Race, events: list[Outcome]) -> Race:
    for event in events:
        race.update(*event)
    return race


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("count", [0, 7, 30, 200])
def test_a_recent_race_equals_a_paired_race_over_its_last_window(task: Any, count: int) -> None:
    events = outcomes(task, count)

    recent = replayed(RecentRace(task, 2, 1, window=30), events)
    plain = replayed(PairedRace(task, 2, 1), events[-30:] if events else [])

    assert recent.seen == count
    assert recent.n == min(count, 30)
    expected = plain.to_dict()
    got = {k: v for k, v in recent.to_dict().items() if k in expected}
    assert got == pytest.approx(expected)
    assert recent.challenger_score == pytest.approx(plain.challenger_score)
    assert recent.baseline_score == pytest.approx(plain.baseline_score)


def test_the_snapshot_adds_seen_and_window() -> None:
    race = replayed(RecentRace("binary", 4, 3, window=10), outcomes("binary", 25))

    data = race.to_dict()

    assert (data["seen"], data["window"], data["n"]) == (25, 10, 10)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_race_comes_back_whole_from_a_redis_hash(task: Any) -> None:
    race = replayed(RecentRace(task, 9, 8, window=40), outcomes(task, 100))
    store = memory_store(fakeredis.FakeServer())
    store.hset("race", mapping=dict(race.to_dict()))  # type: ignore[arg-type]

    restored = RecentRace.from_dict(store.hgetall("race"))

    assert isinstance(restored, RecentRace)
    assert (restored.task, restored.challenger, restored.baseline) == (task, 9, 8)
    assert (restored.seen, restored.window) == (100, 40)
    assert restored.to_dict() == pytest.approx(race.to_dict())


def test_a_snapshot_without_seen_counts_its_events_as_seen() -> None:
    plain = replayed(PairedRace("binary", 2, 1), outcomes("binary", 12))

    restored = RecentRace.from_dict(plain.to_dict())

    assert (restored.seen, restored.n, restored.window) == (12, 12, 500)


def test_the_gate_ends_a_race_by_what_it_has_seen_not_by_its_window() -> None:
    # An even race: never significant. Its window holds 100 events, but it has seen 1000,
    # the gate's cap for min_samples=100, so it is over.
    race = RecentRace("binary", 2, 1, window=100)
    for i in range(1_000):
        race.update(True, i % 2 == 0, i % 2 == 1)

    verdict = gate(race, PromotionSettings(min_samples=100))

    assert (verdict.decision, verdict.evidence["seen"], verdict.evidence["n"]) == (
        "reject",
        1_000,
        100,
    )
    assert "no promotion within 1000 events" in verdict.reason


def test_a_challenger_that_caught_up_wins_on_the_recent_window() -> None:
    # Wrong on its first 400 events, right on the last 200 where the champion errs half the
    # time: over the whole race it loses, over its recent window it clearly wins.
    recent, whole = RecentRace("binary", 2, 1, window=200), PairedRace("binary", 2, 1)
    for i in range(600):
        event = (True, i >= 400, i % 2 == 0)
        recent.update(*event)
        whole.update(*event)

    settings = PromotionSettings(min_samples=100)
    assert gate(recent, settings).decision == "promote"
    assert gate(whole, settings).decision != "promote"


def test_race_counts_classification_outcomes() -> None:
    race = PairedRace("multiclass", challenger=5, baseline=4)
    outcomes = [
        ("a", "a", "a"),
        ("a", "a", "b"),
        ("b", "b", None),
        ("c", None, "c"),
        ("c", "a", "b"),
    ]
    for y_true, challenger, baseline in outcomes:
        race.update(y_true, challenger, baseline)
    counts = (race.both_right, race.challenger_only, race.baseline_only, race.both_wrong)
    assert counts == (1, 2, 1, 1)
    assert (race.n, race.challenger_score, race.baseline_score) == (5, 0.6, 0.4)


def test_race_sums_regression_differences() -> None:
    race = PairedRace("regression", challenger=2, baseline=1)
    race.update(1.0, 1.5, 3.0)  # d = 2 - 0.5
    race.update(2.0, None, 2.5)  # None is 0.0: d = 0.5 - 2
    assert race.n == 2
    assert race.d_sum == 0.0
    assert race.d_squares == 1.5**2 * 2
    assert race.challenger_score == 1.25
    assert race.baseline_score == 1.25


def test_empty_race_scores_zero() -> None:
    race = PairedRace("regression", challenger=2, baseline=1)
    assert (race.n, race.challenger_score, race.baseline_score) == (0, 0.0, 0.0)


@pytest.mark.parametrize("task", TASKS)
def test_race_round_trips_through_a_flat_mapping(task: Any) -> None:
    race = PairedRace(task, challenger=9, baseline=8)
    rng = random.Random(2)
    for _ in range(40):
        race.update(rng.randint(0, 2), rng.randint(0, 2), rng.choice([None, rng.randint(0, 2)]))
    data = race.to_dict()
    assert all(isinstance(value, int | float) for value in data.values())
    # What redis-py hands back from HGETALL without decode_responses: bytes both ways.
    from_redis = {key.encode(): repr(value).encode() for key, value in data.items()}
    for snapshot in (data, from_redis):
        restored = PairedRace.from_dict(snapshot)
        assert restored.task == task
        assert restored.to_dict() == data
    unpickled = pickle.loads(pickle.dumps(race))
    assert unpickled.to_dict() == data


@pytest.mark.parametrize("broken", [{}, {"task": 7, "challenger": 1, "baseline": 0, "n": 0}])
def test_race_refuses_a_broken_snapshot(broken: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"PairedRace\.to_dict"):
        PairedRace.from_dict(broken)


def test_a_watch_race_keeps_its_two_bets_through_a_redis_hash() -> None:
    watch = replayed(RecentRace("binary", 9, 8, window=40, tolerance=0.02), outcomes("binary", 60))
    store = memory_store(fakeredis.FakeServer())
    store.hset("race", mapping=dict(watch.to_dict()))  # type: ignore[arg-type]

    restored = RecentRace.from_dict(store.hgetall("race"))

    assert restored.tolerance == 0.02 and restored.no_worse is not None
    assert restored.no_worse.log_wealths == pytest.approx(watch.no_worse.log_wealths)  # type: ignore[union-attr]
    assert restored.worse is not None and watch.worse is not None
    assert restored.worse.log_wealths == pytest.approx(watch.worse.log_wealths)
    plain = RecentRace("binary", 9, 8).to_dict()
    assert "tolerance" not in plain and not any(key.startswith("no_worse") for key in plain)
    assert RecentRace.from_dict(plain).no_worse is None
    assert not any(key.startswith("worse") for key in plain)
    assert RecentRace.from_dict(plain).worse is None
