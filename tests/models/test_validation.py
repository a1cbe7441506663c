"""The validation gate and the rollback check: every branch, exact p-values, a seeded race."""

from __future__ import annotations

import dataclasses
import random

import pytest
from scipy import stats

from meander.config import PromotionSettings
from meander.models.race import PairedRace, RecentRace
from meander.models.validation import Verdict, gate, judge, rollback_check

SETTINGS = PromotionSettings(min_samples=20, min_gain=0.0, significance=0.05)


def _race(both_right: int, challenger_only: int, baseline_only: int, both_wrong: int) -> PairedRace:
    race = PairedRace("binary", challenger=2, baseline=1)
    outcomes = {(True, True): both_right, (True, False): challenger_only}
    outcomes |= {(False, True): baseline_only, (False, False): both_wrong}
    for (challenger_right, baseline_right), count in outcomes.items():
        for _ in range(count):
            race.update(
                "yes", "yes" if challenger_right else "no", "yes" if baseline_right else "no"
            )
    return race


def _regression_race(errors: list[tuple[float, float]]) -> PairedRace:
    """A race from (challenger error, baseline error) pairs, the truth being 0."""
    race = PairedRace("regression", challenger=2, baseline=1)
    for challenger_error, baseline_error in errors:
        race.update(0.0, challenger_error, -baseline_error)
    return race


# P(X >= 15) for X ~ Binomial(20, 1/2): (C(20,15) + ... + C(20,20)) / 2**20, worked by hand.
P_15_OF_20 = (15504 + 4845 + 1140 + 190 + 20 + 1) / 2**20


def test_verdict_is_frozen() -> None:
    verdict = Verdict("keep", "Fine.", {"n": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.decision = "roll_back"  # type: ignore[misc]


def test_too_few_events_continue() -> None:
    verdict = gate(_race(0, 19, 0, 0), SETTINGS)
    assert verdict.decision == "continue"
    assert "19 of the 20" in verdict.reason
    assert "p_value" not in verdict.evidence


def test_significantly_better_challenger_is_promoted_with_the_exact_mcnemar_p() -> None:
    verdict = gate(_race(80, 15, 5, 0), SETTINGS)
    assert verdict.decision == "promote"
    evidence = verdict.evidence
    assert evidence["test"] == "mcnemar_exact"
    assert evidence["p_value"] == pytest.approx(P_15_OF_20, rel=1e-12)
    assert (evidence["challenger_only"], evidence["baseline_only"], evidence["discordant"]) == (
        15,
        5,
        20,
    )
    assert evidence["gain"] == pytest.approx(0.1)
    assert (evidence["challenger_score"], evidence["baseline_score"]) == (0.95, 0.85)
    assert "0.0207" in verdict.reason


def test_significant_but_too_small_a_gain_is_not_promoted() -> None:
    race = _race(80, 15, 5, 0)
    demanding = SETTINGS.model_copy(update={"min_gain": 0.2})
    assert gate(race, demanding).decision == "continue"
    verdict = gate(race, demanding, max_samples=100)
    assert verdict.decision == "reject"
    assert "within 100 events" in verdict.reason


def test_significantly_worse_challenger_is_rejected() -> None:
    verdict = gate(_race(80, 5, 15, 0), SETTINGS)
    assert verdict.decision == "reject"
    assert verdict.evidence["p_value_worse"] == pytest.approx(P_15_OF_20, rel=1e-12)
    # P(X >= 5) = 1 - P(X <= 4) = 1 - (1 + 20 + 190 + 1140 + 4845) / 2**20
    assert verdict.evidence["p_value"] == pytest.approx(1 - 6196 / 2**20, rel=1e-12)
    assert verdict.evidence["gain"] == pytest.approx(-0.1)
    assert "significantly worse" in verdict.reason


def test_undecided_race_continues_until_the_cap() -> None:
    race = _race(70, 12, 8, 10)
    verdict = gate(race, SETTINGS)
    assert verdict.decision == "continue"
    expected = stats.binomtest(12, 20, 0.5, alternative="greater").pvalue
    assert verdict.evidence["p_value"] == pytest.approx(expected, rel=1e-12)
    assert verdict.evidence["max_samples"] == 10 * SETTINGS.min_samples
    assert gate(race, SETTINGS, max_samples=100).decision == "reject"
    assert gate(race, SETTINGS, max_samples=101).decision == "continue"


def test_identical_predictions_give_no_evidence_either_way() -> None:
    verdict = gate(_race(90, 0, 0, 10), SETTINGS)
    assert verdict.decision == "continue"
    assert verdict.evidence["p_value"] == verdict.evidence["p_value_worse"] == 1.0
    assert gate(_race(90, 0, 0, 10), SETTINGS, max_samples=100).decision == "reject"


def test_a_cap_below_min_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="raise max_samples"):
        gate(_race(10, 0, 0, 0), SETTINGS, max_samples=19)


@pytest.mark.parametrize(("shift", "decision"), [(-0.3, "promote"), (0.3, "reject")])
def test_regression_uses_a_paired_t_test(shift: float, decision: str) -> None:
    rng = random.Random(23)
    baseline = [abs(rng.gauss(0.0, 1.0)) + 0.5 for _ in range(60)]
    challenger = [max(error + shift + rng.gauss(0.0, 0.4), 0.0) for error in baseline]
    verdict = gate(_regression_race(list(zip(challenger, baseline, strict=True))), SETTINGS)
    assert verdict.decision == decision
    evidence = verdict.evidence
    assert evidence["test"] == "paired_t"
    better = stats.ttest_rel(baseline, challenger, alternative="greater")
    worse = stats.ttest_rel(baseline, challenger, alternative="less")
    assert evidence["p_value"] == pytest.approx(better.pvalue, rel=1e-9)
    assert evidence["p_value_worse"] == pytest.approx(worse.pvalue, rel=1e-9)
    assert evidence["t_statistic"] == pytest.approx(better.statistic, rel=1e-9)
    gain = sum(baseline) / 60 - sum(challenger) / 60
    assert evidence["gain"] == pytest.approx(gain, rel=1e-9)
    assert evidence["challenger_score"] == pytest.approx(sum(challenger) / 60, rel=1e-12)


@pytest.mark.parametrize(
    ("d", "decision", "p_value"),
    [(0.25, "promote", 0.0), (-0.25, "reject", 1.0), (0.0, "continue", 1.0)],
)
def test_regression_with_every_difference_equal(d: float, decision: str, p_value: float) -> None:
    race = _regression_race([(1.0, 1.0 + d)] * 30)
    verdict = gate(race, SETTINGS)
    assert verdict.decision == decision
    assert verdict.evidence["p_value"] == p_value
    assert verdict.evidence["d_std"] == 0.0
    assert "t_statistic" not in verdict.evidence


def test_regression_with_a_single_event_decides_nothing() -> None:
    race = _regression_race([(0.1, 5.0)])
    verdict = gate(race, PromotionSettings(min_samples=1))
    assert verdict.decision == "continue"
    assert verdict.evidence["p_value"] == 1.0


def _simulate(challenger_accuracy: float, seed: int) -> tuple[Verdict, int]:
    """Race a challenger against a champion right 80% of the time; look every 50 events."""
    rng = random.Random(seed)
    settings = PromotionSettings(min_samples=500)  # so the cap is 5000
    race = PairedRace("binary", challenger=2, baseline=1)
    while True:
        race.update(True, rng.random() < challenger_accuracy, rng.random() < 0.8)
        if race.n % 50 == 0:
            verdict = gate(race, settings)
            if verdict.decision != "continue":
                return verdict, race.n


def test_seeded_race_promotes_a_clearly_better_challenger() -> None:
    verdict, n = _simulate(challenger_accuracy=0.88, seed=1)
    assert verdict.decision == "promote"
    assert n == 500  # decided at the first look allowed
    assert float(verdict.evidence["gain"]) > 0.05


def test_seeded_race_rejects_a_same_quality_challenger_at_the_cap() -> None:
    verdict, n = _simulate(challenger_accuracy=0.8, seed=1)
    assert verdict.decision == "reject"
    assert n == 5_000
    assert "no promotion within 5000 events" in verdict.reason


def _judged(
    challenger_accuracy: float, seed: int, settings: PromotionSettings | None = None
) -> tuple[Verdict, int]:
    """Race a challenger against a champion right 80% of the time, judged at every event."""
    rng = random.Random(seed)
    settings = settings or PromotionSettings()  # min_samples 100, patience 150, cap 1000
    race = RecentRace("binary", challenger=2, baseline=1)
    while True:
        race.update(True, rng.random() < challenger_accuracy, rng.random() < 0.8)
        verdict = judge(race, settings, rivals=4)
        if verdict.decision != "continue":
            return verdict, race.seen


def test_judge_promotes_a_challenger_ten_points_better_within_500_events() -> None:
    verdict, seen = _judged(challenger_accuracy=0.9, seed=1)
    assert verdict.decision == "promote"
    assert seen < 500  # the fixed-sample gate with min_samples 500 could not decide before
    assert float(verdict.evidence["wealth"]) >= 4 / 0.05 == verdict.evidence["threshold"]


def test_judge_looking_at_every_event_rarely_promotes_an_equal_challenger() -> None:
    # 100 races between equal models, judged at every event until the cap: the bet bounds the
    # share promoted by significance / rivals = 1.25 %; a test that looked at every event
    # without it would promote far more often.
    patient = PromotionSettings(patience=1_000)  # no rejection as worse before the cap
    promoted = sum(_judged(0.8, seed, patient)[0].decision == "promote" for seed in range(100))
    assert promoted / 100 <= 0.0125


def test_judge_rejects_a_worse_challenger_after_its_patience_and_an_equal_one_at_the_cap() -> None:
    worse, seen = _judged(challenger_accuracy=0.6, seed=2)
    assert (worse.decision, seen) == ("reject", PromotionSettings().patience)
    assert "significantly worse" in worse.reason
    equal, seen = _judged(challenger_accuracy=0.8, seed=3)
    assert (equal.decision, seen) == ("reject", 1_000)
    assert "no promotion within 1000 events" in equal.reason


def test_judge_waits_for_min_samples() -> None:
    race = RecentRace("binary", challenger=2, baseline=1)
    for _ in range(99):
        race.update(True, True, False)
    assert judge(race, PromotionSettings()).decision == "continue"
    race.update(True, True, False)
    assert judge(race, PromotionSettings()).decision == "promote"


ROLLBACK = PromotionSettings(rollback_window=100, rollback_tolerance=0.02)


def test_rollback_waits_for_its_window() -> None:
    verdict = rollback_check(_race(0, 0, 99, 0), ROLLBACK)
    assert verdict.decision == "continue"
    assert "99 of the 100" in verdict.reason


@pytest.mark.parametrize(("new_right", "decision"), [(80, "roll_back"), (82, "keep"), (90, "keep")])
def test_rollback_of_a_classifier(new_right: int, decision: str) -> None:
    old_right = 83  # the old champion's accuracy is 0.83; the new one must stay above 0.81
    both = min(new_right, old_right)
    race = _race(both, new_right - both, old_right - both, 100 - max(new_right, old_right))
    verdict = rollback_check(race, ROLLBACK)
    assert verdict.decision == decision
    assert verdict.evidence["new_score"] == new_right / 100
    assert verdict.evidence["old_score"] == 0.83
    assert verdict.evidence["limit"] == pytest.approx(0.81)


def test_an_equal_classifier_is_kept_with_no_tolerance() -> None:
    strict = ROLLBACK.model_copy(update={"rollback_tolerance": 0.0})
    assert rollback_check(_race(50, 30, 30, 0), strict).decision == "keep"


@pytest.mark.parametrize(("new_error", "decision"), [(1.1, "roll_back"), (1.04, "keep")])
def test_rollback_of_a_regressor(new_error: float, decision: str) -> None:
    tolerant = ROLLBACK.model_copy(update={"rollback_tolerance": 0.05})
    race = _regression_race([(new_error, 1.0)] * 100)
    verdict = rollback_check(race, tolerant)
    assert verdict.decision == decision
    assert verdict.evidence["limit"] == pytest.approx(1.05)
    assert "MAE" in verdict.reason


def _watched(new_accuracy: float, seed: int, old_accuracy: float = 0.8) -> tuple[Verdict, int]:
    """A watch race judged at every event, the old champion right 80 % of the time unless told."""
    rng = random.Random(seed)
    settings = PromotionSettings(rollback_window=1_000, rollback_tolerance=0.02)
    race = RecentRace("binary", 2, 1, window=1_000, tolerance=0.02)
    while True:
        race.update(True, rng.random() < new_accuracy, rng.random() < old_accuracy)
        verdict = rollback_check(race, settings)
        if verdict.decision != "continue":
            return verdict, race.n


def test_a_watch_keeps_a_clearly_better_champion_early() -> None:
    verdict, n = _watched(new_accuracy=0.9, seed=1)
    assert verdict.decision == "keep" and 100 <= n < 500  # half the window
    assert verdict.evidence["no_worse_wealth"] >= 20 == verdict.evidence["threshold"]


def test_a_watch_rarely_keeps_early_a_champion_worse_by_more_than_the_tolerance() -> None:
    # 100 watches of a new champion 4 points worse (the tolerance is 2), judged at every event:
    # the bet keeps one early at most significance (5 %) of the time; the rest are judged at
    # the window's end, where most are rolled back.
    verdicts = [_watched(new_accuracy=0.76, seed=seed) for seed in range(100)]
    early = sum(verdict.decision == "keep" and n < 1_000 for verdict, n in verdicts)
    assert early <= 5
    assert sum(verdict.decision == "roll_back" for verdict, _ in verdicts) >= 50


def test_a_race_without_the_no_worse_bet_is_watched_to_its_window() -> None:
    verdict = rollback_check(_race(99, 0, 0, 0), ROLLBACK.model_copy(update={"min_samples": 20}))
    assert verdict.decision == "continue"


@pytest.mark.parametrize(("new_error", "decision"), [(0.9, "keep"), (1.1, "roll_back")])
def test_a_regressors_watch_ends_early_the_way_its_mae_lies_from_the_tolerance(
    new_error: float, decision: str
) -> None:
    # The old champion errs by 1 on every event (noise of 0.2 either way), the new one by
    # new_error; the tolerance allows an MAE 2 % larger.
    rng = random.Random(4)
    settings = PromotionSettings(rollback_window=1_000, rollback_tolerance=0.02)
    race = RecentRace("regression", 2, 1, window=1_000, tolerance=0.02)
    verdict = rollback_check(race, settings)
    while verdict.decision == "continue":
        noise = rng.uniform(-0.2, 0.2)
        race.update(0.0, new_error + noise, -1.0 - rng.uniform(-0.2, 0.2))
        verdict = rollback_check(race, settings)
    assert race.n < 1_000
    assert verdict.decision == decision


def test_a_new_champion_that_collapses_is_rolled_back_within_a_few_dozen_events() -> None:
    # Right 12 % of the time where the old one is right half the time: without the bet the
    # watch would have gone on for its whole window of 1,000 events.
    verdict, n = _watched(new_accuracy=0.12, seed=2, old_accuracy=0.5)
    assert verdict.decision == "roll_back" and n < 100
    assert verdict.evidence["worse_wealth"] >= 20 == verdict.evidence["threshold"]
    assert "is more than 0.02 less accurate grew" in verdict.reason


def test_a_watch_rarely_rolls_back_early_a_champion_as_good_as_the_old_one() -> None:
    # 100 watches of a new champion exactly as accurate as the old one, judged at every event:
    # the bet rolls one back before the window's end at most significance (5 %) of the time.
    verdicts = [_watched(new_accuracy=0.8, seed=seed) for seed in range(100)]
    early = sum(verdict.decision == "roll_back" and n < 1_000 for verdict, n in verdicts)
    assert early <= 5


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_a_regression_challenger_ahead_at_the_cap_races_on_up_to_twice_as_long(task: str) -> None:
    promotion = PromotionSettings(min_samples=50, patience=50)  # cap: 500 events
    race = RecentRace(task, challenger=2, baseline=1, window=80)  # type: ignore[arg-type]
    decisions = {}
    for event in range(1, 1_001):
        if task == "regression":  # errors 1.0 / 1.9 against 2.0 / 1.0: ahead by 0.05 a pair
            race.update(0.0, *((1.0, 2.0) if event % 2 else (1.9, 1.0)))
        else:  # right alone on 21 events of 40, the champion alone on 19
            race.update(True, event % 40 < 21, event % 40 >= 21)
        decisions[event] = judge(race, promotion).decision
    assert race.gain > 0 and race.better.wealth < 20  # ahead, nothing proven
    assert decisions[499] == "continue"
    if task == "regression":
        assert decisions[500] == decisions[999] == "continue"
        assert decisions[1_000] == "reject"
    else:
        assert decisions[500] == "reject"
