"""An anytime-valid one-sided test of a paired race: testing by betting.

Each shared event gives a score ``d`` in [-1, 1] that favours the challenger when positive
(classification: +1 when only the challenger is right, -1 when only the champion is, else 0).
:class:`Bet` tests the null hypothesis "the challenger's expected ``d`` is at most ``margin``"
by betting on ``d - margin`` at each event. A bettor with stake ``s`` multiplies its wealth by
``1 + s * (d - margin)``; under the null each bettor's wealth is a nonnegative supermartingale,
and so is their average. By Ville's inequality the average ever reaches ``1 / alpha`` with
probability at most ``alpha``, however long the race runs and however often someone looks. A
race can therefore be judged at every event, and a clear winner is promoted after a few dozen
events instead of after a fixed sample size.

:class:`Bet` averages bettors with fixed stakes from 2 % to 50 % (the average does about as well
as the best of them in hindsight), and each bets only while an exponentially weighted mean of
the recent ``d - margin`` is positive: whether to bet is decided from past events only, so the
guarantee holds, and a young challenger's learning curve costs it nothing.

>>> bet = Bet()
>>> for _ in range(60):  # the challenger alone is right on 3 events of 10, never the champion
...     for d in (1, 0, 0, 1, 0, 0, 1, 0, 0, 0):
...         bet.update(d)
>>> bet.wealth > 20  # evidence at the 5 % level
True
>>> noise = Bet()
>>> for d in [1, -1] * 300:
...     noise.update(d)
>>> noise.wealth < 2
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["Bet"]

STAKES = (0.02, 0.05, 0.1, 0.2, 0.5)
HALF_LIFE = 50.0  # events after which an outcome weighs half in deciding whether to bet


class Bet:
    """Wealth of bettors against "the challenger's mean ``d`` is at most ``margin``"."""

    __slots__ = ("log_wealths", "mean", "weight")

    _decay = 0.5 ** (1.0 / HALF_LIFE)

    def __init__(self) -> None:
        self.log_wealths = [0.0] * len(STAKES)
        self.mean = 0.0  # weighted mean of the recent d - margin
        self.weight = 0.0

    @property
    def wealth(self) -> float:
        """The average wealth of the bettors, each of whom started with 1."""
        return sum(math.exp(min(w, 700.0)) for w in self.log_wealths) / len(STAKES)

    def update(self, d: float, margin: float = 0.0) -> None:
        """Bet on one event's ``d`` in [-1, 1], against the null "mean ``d`` <= ``margin``"."""
        if not -1.0 <= d <= 1.0:
            raise ValueError(f"d={d} is outside [-1, 1]: scale it before betting on it")
        x = d - margin
        if self.mean > 0.0:
            # 1 + s * x stays above 0: x >= -1 - margin, and s * room <= 0.5 / (1 + margin).
            room = 1.0 / (1.0 + max(margin, 0.0))
            wealths = self.log_wealths
            for index, stake in enumerate(STAKES):
                wealths[index] += math.log1p(stake * room * x)
        self.weight = self.weight * self._decay + 1.0
        self.mean += (x - self.mean) / self.weight

    def to_dict(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}_w{i}": w for i, w in enumerate(self.log_wealths)}
        return out | {f"{prefix}_mean": self.mean, f"{prefix}_weight": self.weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, float | int | str], prefix: str) -> Bet:
        bet = cls()
        bet.log_wealths = [float(data.get(f"{prefix}_w{i}", 0.0)) for i in range(len(STAKES))]
        bet.mean = float(data.get(f"{prefix}_mean", 0.0))
        bet.weight = float(data.get(f"{prefix}_weight", 0.0))
        return bet
