"""The validation gate: a challenger replaces the champion only when it beats it on the same events.

Both models score every labelled event of the race, so the comparison is paired: for
classification the exact McNemar test on the events where exactly one model is right, for
regression a paired t-test on the per-event difference of absolute errors. `judge` decides a
race the learner keeps (:class:`~meander.models.race.RecentRace`) at any event: it promotes on
the race's bet, which stays sound however often it is looked at. After a promotion,
`rollback_check` watches the new champion against the one it replaced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from scipy import stats

from meander.config import PromotionSettings
from meander.models.race import PairedRace, RecentRace

__all__ = ["Decision", "Verdict", "gate", "judge", "rollback_check"]

Decision = Literal["promote", "reject", "continue", "roll_back", "keep"]
Evidence = dict[str, float | int | str]

# Below this share of the mean square, the spread of d is rounding noise: every d is the same.
_RELATIVE_ZERO_VARIANCE = 1e-12


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, one sentence saying why with the figures, and the figures.

    >>> verdict = Verdict("continue", "Not enough events yet.", {"n": 12})
    >>> verdict.decision, verdict.evidence["n"]
    ('continue', 12)
    """

    decision: Decision
    reason: str
    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True)
class _Test:
    gain: float
    p_better: float  # H1: the challenger is better
    p_worse: float  # H1: the challenger is worse
    evidence: Evidence


def _mcnemar(race: PairedRace) -> _Test:
    wins, losses = race.challenger_only, race.baseline_only
    discordant = wins + losses
    if discordant:
        p_better = stats.binomtest(wins, discordant, 0.5, alternative="greater").pvalue
        p_worse = stats.binomtest(wins, discordant, 0.5, alternative="less").pvalue
    else:  # the two models agree on every event: nothing tells them apart
        p_better = p_worse = 1.0
    # (wins - losses) / n is the accuracy difference, without the rounding of two subtractions.
    evidence: Evidence = {
        "test": "mcnemar_exact",
        "challenger_only": wins,
        "baseline_only": losses,
        "discordant": discordant,
    }
    return _Test((wins - losses) / race.n, float(p_better), float(p_worse), evidence)


def _paired_t(race: PairedRace) -> _Test:
    n = race.n
    mean = race.d_sum / n  # = baseline MAE - challenger MAE
    evidence: Evidence = {"test": "paired_t", "d_mean": mean}
    if n < 2:
        return _Test(mean, 1.0, 1.0, evidence | {"d_std": 0.0})
    variance = (race.d_squares - n * mean * mean) / (n - 1)
    if variance <= _RELATIVE_ZERO_VARIANCE * race.d_squares / n:
        # Every event moved by the same amount: its sign is the whole story.
        evidence["d_std"] = 0.0
        return _Test(mean, 0.0 if mean > 0 else 1.0, 0.0 if mean < 0 else 1.0, evidence)
    evidence["d_std"] = math.sqrt(variance)
    statistic = mean / math.sqrt(variance / n)
    evidence["t_statistic"] = statistic
    p_better = float(stats.t.sf(statistic, n - 1))
    p_worse = float(stats.t.cdf(statistic, n - 1))
    return _Test(mean, p_better, p_worse, evidence)


def _metric(race: PairedRace) -> str:
    return "MAE" if race.task == "regression" else "accuracy"


def _figures(race: PairedRace) -> str:
    return (
        f"{_metric(race)} {race.challenger_score:.4f} for v{race.challenger} against "
        f"{race.baseline_score:.4f} for v{race.baseline} on {race.n} shared events"
    )


def _evidence(race: PairedRace, promotion: PromotionSettings, cap: int) -> Evidence:
    """What every verdict on ``race`` records, whatever it decides."""
    return {
        "n": race.n,
        "seen": getattr(race, "seen", race.n),
        "challenger": race.challenger,
        "baseline": race.baseline,
        "challenger_score": race.challenger_score,
        "baseline_score": race.baseline_score,
        "min_samples": promotion.min_samples,
        "max_samples": cap,
    }


def _waiting(race: PairedRace, promotion: PromotionSettings, evidence: Evidence) -> Verdict:
    reason = f"Waiting: {race.n} of the {promotion.min_samples} shared events needed so far."
    return Verdict("continue", reason, evidence)


def gate(
    race: PairedRace, promotion: PromotionSettings, *, max_samples: int | None = None
) -> Verdict:
    """Decide whether the challenger of `race` replaces its baseline, the champion.

    - fewer than `promotion.min_samples` events: continue;
    - promote when the gain (accuracy difference, or MAE reduction for regression) is at least
      `promotion.min_gain` and the one-sided test says the challenger is better at
      `promotion.significance`;
    - reject when the opposite one-sided test says it is worse, or when `max_samples` events
      (default 10 x `min_samples`) have passed without a promotion (a race that keeps only its
      latest events, :class:`meander.models.race.RecentRace`, counts every event it has `seen`);
    - otherwise continue.

    >>> race = PairedRace("binary", challenger=2, baseline=1)
    >>> for event in range(100):  # the challenger is right 20 more times, never less
    ...     _ = race.update(True, True, event >= 20)
    >>> verdict = gate(race, PromotionSettings(min_samples=50))
    >>> verdict.decision, verdict.evidence["p_value"] == 0.5**20
    ('promote', True)
    """
    cap = 10 * promotion.min_samples if max_samples is None else max_samples
    if cap < promotion.min_samples:
        raise ValueError(
            f"max_samples={cap} is below promotion.min_samples={promotion.min_samples}: "
            "the race would end before the gate may judge it; raise max_samples"
        )
    evidence = _evidence(race, promotion, cap)
    if race.n < promotion.min_samples:
        return _waiting(race, promotion, evidence)

    test = _mcnemar(race) if race.task != "regression" else _paired_t(race)
    evidence |= test.evidence | {
        "gain": test.gain,
        "p_value": test.p_better,
        "p_value_worse": test.p_worse,
        "min_gain": promotion.min_gain,
        "significance": promotion.significance,
    }
    figures = f"{_figures(race)} (gain {test.gain:+.4f}, {evidence['test']}"
    alpha = promotion.significance
    if test.gain >= promotion.min_gain and test.p_better < alpha:
        reason = f"Promote: {figures} p={test.p_better:.3g} < {alpha})."
        return Verdict("promote", reason, evidence)
    if test.p_worse < alpha:
        reason = f"Reject: significantly worse, {figures} p={test.p_worse:.3g} < {alpha})."
        return Verdict("reject", reason, evidence)
    if getattr(race, "seen", race.n) >= cap:
        reason = (
            f"Reject: no promotion within {cap} events, {figures} p={test.p_better:.3g}, "
            f"needed < {alpha} and a gain of at least {promotion.min_gain})."
        )
        return Verdict("reject", reason, evidence)
    reason = f"Undecided: {figures} p={test.p_better:.3g}); racing on up to {cap} events."
    return Verdict("continue", reason, evidence)


def judge(race: RecentRace, promotion: PromotionSettings, *, rivals: int = 1) -> Verdict:
    """Decide a race at any event: promote on its bet, reject on its latest events.

    - fewer than `promotion.min_samples` events: continue;
    - promote once the bet that the challenger is better (:class:`~meander.models.betting.Bet`)
      has grown to ``rivals / promotion.significance`` times its stake, with a gain of at least
      `promotion.min_gain` on the race's latest events. Under "no better than the champion"
      that happens with probability at most ``significance / rivals`` however often the race is
      judged, so a pool of ``rivals`` challengers promotes an equal one at most that often;
    - reject after `promotion.patience` events when the race's latest events say it is worse
      (the test of `gate`), or after 10 x `min_samples` events without a promotion (twice that
      for a regression challenger ahead on the latest events): a challenger that does not win
      soon costs its predict and learn for nothing;
    - otherwise continue.

    >>> race = RecentRace("binary", challenger=2, baseline=1)
    >>> for event in range(120):  # right where the champion errs, one event in four
    ...     _ = race.update(True, True, event % 4 != 0)
    >>> judge(race, PromotionSettings(min_samples=50), rivals=4).decision
    'promote'
    """
    threshold = rivals / promotion.significance
    cap = 10 * promotion.min_samples
    evidence = _evidence(race, promotion, cap) | {
        "wealth": race.better.wealth,
        "threshold": threshold,
    }
    if race.n < promotion.min_samples:
        return _waiting(race, promotion, evidence)
    gain = race.gain
    evidence |= {"gain": gain, "min_gain": promotion.min_gain}
    figures = f"{_figures(race)} (gain {gain:+.4f}"
    wealth = race.better.wealth
    if wealth >= threshold and gain >= promotion.min_gain:
        reason = (
            f"Promote: {figures}; the bet on the challenger grew {wealth:.3g}-fold, "
            f"at least {threshold:g}, over {race.seen} events)."
        )
        return Verdict("promote", reason, evidence)
    alpha = promotion.significance
    if race.seen >= promotion.patience and gain < 0:
        test = _mcnemar(race) if race.task != "regression" else _paired_t(race)
        evidence |= test.evidence | {"p_value_worse": test.p_worse, "significance": alpha}
        if test.p_worse < alpha:
            reason = (
                f"Reject: significantly worse, {figures}, {evidence['test']} "
                f"p={test.p_worse:.3g} < {alpha})."
            )
            return Verdict("reject", reason, evidence)
    if race.seen >= cap and not _ahead_for_longer(race, cap):
        reason = (
            f"Reject: no promotion within {cap} events, {figures}; the bet grew "
            f"{wealth:.3g}-fold, {threshold:g} needed)."
        )
        return Verdict("reject", reason, evidence)
    reason = f"Undecided: {figures}; the bet stands at {wealth:.3g}, {threshold:g} needed)."
    return Verdict("continue", reason, evidence)


def _ahead_for_longer(race: RecentRace, cap: int) -> bool:
    """A regression challenger ahead of the champion on the race's latest events races on, up
    to twice ``cap`` events. Its bet grows on differences of error scaled to the typical error,
    mostly far inside [-1, 1], so more slowly than a classifier's on a like gain, and it started
    while the challenger learned: after a drift a challenger 25 % ahead timed out with its bet
    at 9 of the 80 needed."""
    return race.task == "regression" and race.gain > 0 and race.seen < 2 * cap


def _decided_early(
    race: PairedRace, promotion: PromotionSettings, evidence: Evidence
) -> Verdict | None:
    """End the watch before its window once one of the watch race's two bets has grown to
    ``1 / significance``: under the opposite hypothesis that happens with probability at most
    ``significance``, however often the watch is judged (for regression, as for its promotion
    bet, as far as the race's running error scale bounds each event's score)."""
    return _rolled_back_early(race, promotion, evidence) or _kept_early(race, promotion, evidence)


# A watch's early verdicts: the action, its name in the reason, and how the bet bounds the new
# champion's MAE and accuracy against the tolerance.
Wording = tuple[Decision, str, str, str]
_ROLL_BACK: Wording = ("roll_back", "Roll back", "above", "more than")
_KEEP: Wording = ("keep", "Keep", "at most", "at most")


def _rolled_back_early(
    race: PairedRace, promotion: PromotionSettings, evidence: Evidence
) -> Verdict | None:
    """Roll back once the bet that the new champion is worse by more than the tolerance
    (:attr:`RecentRace.worse`) has grown enough. A new champion that collapses right after its
    promotion goes within a few dozen events, before a challenger racing it wins against a
    model no longer worth beating and the one it replaced is dropped unheard."""
    return _bet_won(race, promotion, evidence, "worse", 0, _ROLL_BACK)


def _kept_early(
    race: PairedRace, promotion: PromotionSettings, evidence: Evidence
) -> Verdict | None:
    """Keep the new champion once the bet that it is at most the tolerance worse
    (:attr:`RecentRace.no_worse`) has grown enough, after `promotion.min_samples` events."""
    least = promotion.min_samples
    return _bet_won(race, promotion, evidence, "no_worse", least, _KEEP)


def _bet_won(
    race: PairedRace,
    promotion: PromotionSettings,
    evidence: Evidence,
    name: str,
    least: int,
    words: Wording,
) -> Verdict | None:
    """The watch's verdict once its bet ``name`` grew to 1 / significance after ``least``
    events, in ``words`` (:data:`_ROLL_BACK`, :data:`_KEEP`)."""
    bet, threshold = getattr(race, name, None), 1 / promotion.significance
    if bet is None or race.n < least or bet.wealth < threshold:
        return None
    evidence |= {f"{name}_wealth": bet.wealth, "threshold": threshold}
    action, verdict, mae, accuracy = words
    tolerance = promotion.rollback_tolerance
    worse = (
        f"has an MAE {mae} {1 + tolerance:g} times v{race.baseline}'s"
        if race.task == "regression"
        else f"is {accuracy} {tolerance:g} less accurate"
    )
    reason = (
        f"{verdict}: {_figures(race)}; the bet that v{race.challenger} {worse} grew "
        f"{bet.wealth:.3g}-fold, at least {threshold:g}."
    )
    return Verdict(action, reason, evidence)


def rollback_check(race: PairedRace, promotion: PromotionSettings) -> Verdict:
    """Decide whether a freshly promoted champion is rolled back to the one it replaced.

    `race.challenger` is the new champion and `race.baseline` the old one, scored on the same events
    since the promotion. At `promotion.rollback_window` events the new one is rolled back when its
    accuracy is below the old one's minus `rollback_tolerance` (for regression: its MAE above the
    old MAE times 1 + `rollback_tolerance`), and kept otherwise. A watch race that bets
    (:class:`~meander.models.race.RecentRace` with a tolerance) may end sooner, either way, once
    its bet is clear.

    >>> race = PairedRace("regression", challenger=3, baseline=2)
    >>> for _ in range(10):
    ...     _ = race.update(1.0, 1.5, 1.2)  # the new champion errs by 0.5, the old one by 0.2
    >>> rollback_check(race, PromotionSettings(rollback_window=10)).decision
    'roll_back'
    """
    window, tolerance = promotion.rollback_window, promotion.rollback_tolerance
    new, old = race.challenger_score, race.baseline_score
    evidence: Evidence = {
        "n": race.n,
        "new_champion": race.challenger,
        "old_champion": race.baseline,
        "new_score": new,
        "old_score": old,
        "rollback_window": window,
        "rollback_tolerance": tolerance,
    }
    if race.n < window:
        early = _decided_early(race, promotion, evidence)
        if early is not None:
            return early
        reason = f"Watching: {race.n} of the {window} events after the promotion so far."
        return Verdict("continue", reason, evidence)
    if race.task == "regression":
        limit = old * (1 + tolerance)
        worse = new > limit
        bound = f"the {limit:.4f} allowed (old MAE x {1 + tolerance:g})"
    else:
        limit = old - tolerance
        worse = new < limit
        bound = f"the {limit:.4f} required (old accuracy - {tolerance:g})"
    evidence["limit"] = limit
    figures = _figures(race)
    if worse:
        return Verdict("roll_back", f"Roll back: {figures}, beyond {bound}.", evidence)
    return Verdict("keep", f"Keep: {figures}, within {bound}.", evidence)
