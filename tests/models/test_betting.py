"""The race's bets: sound under the null, quick on a clear winner, fair to a learning model."""

from __future__ import annotations

import random

import pytest

from meander.models.betting import Bet

THRESHOLD = 20.0  # 1 / significance at the 5 % level


def _crossed(bet: Bet, outcomes: list[float], margin: float = 0.0) -> int | None:
    """The event at which the wealth first reached the threshold, or None."""
    for index, d in enumerate(outcomes):
        bet.update(d, margin)
        if bet.wealth >= THRESHOLD:
            return index
    return None


def _draws(rng: random.Random, n: int, wins: float, losses: float) -> list[float]:
    out = []
    for _ in range(n):
        u = rng.random()
        out.append(1.0 if u < wins else -1.0 if u < wins + losses else 0.0)
    return out


def test_an_equal_challenger_is_promoted_at_most_as_often_as_the_significance_allows() -> None:
    # 400 races of 3,000 events each between two models that are right and wrong on different
    # events equally often, watched at every event: Ville's inequality bounds the share of
    # races whose wealth ever reaches 1 / 0.05 by 0.05.
    rng = random.Random(7)
    crossed = sum(_crossed(Bet(), _draws(rng, 3_000, 0.15, 0.15)) is not None for _ in range(400))
    assert crossed / 400 <= 0.05


def test_a_clearly_better_challenger_wins_within_a_hundred_events() -> None:
    rng = random.Random(3)
    at = _crossed(Bet(), _draws(rng, 1_000, 0.3, 0.05))
    assert at is not None and at < 100


def test_a_young_challenger_is_not_held_back_by_its_first_errors() -> None:
    # Worse for 500 events while it learns, then clearly better: the stake is 0 while it
    # looks worse, so it wins soon after it pulls ahead.
    rng = random.Random(5)
    outcomes = _draws(rng, 500, 0.05, 0.3) + _draws(rng, 1_000, 0.3, 0.05)
    at = _crossed(Bet(), outcomes)
    assert at is not None and 500 < at < 700


@pytest.mark.parametrize(("margin", "wins"), [(-0.005, True), (0.005, False)])
def test_the_margin_lets_an_equal_cheaper_model_win_and_keeps_a_dearer_one_out(
    margin: float, wins: bool
) -> None:
    # The two models agree on almost every event: only the cost margin tells them apart.
    rng = random.Random(11)
    outcomes = _draws(rng, 5_000, 0.002, 0.002)
    assert (_crossed(Bet(), outcomes, margin) is not None) is wins


def test_a_bet_survives_a_round_trip_through_a_redis_hash() -> None:
    bet = Bet()
    for d in (1.0, 0.0, 1.0, -1.0, 1.0):
        bet.update(d, 0.01)
    stored = {k: str(v) for k, v in bet.to_dict("better").items()}  # Redis hands back text
    restored = Bet.from_dict(stored, "better")
    assert (restored.log_wealths, restored.mean, restored.weight) == (
        bet.log_wealths,
        bet.mean,
        bet.weight,
    )
