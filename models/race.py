"""A race judged on its latest events: what a challenger is worth *now*.

A model that starts after a drift learns as it races, so over the whole race it carries the
errors of its first events. :class:`RecentRace` keeps the paired outcomes of the last
``window`` shared events only (and how many it has seen in all), so the gate compares the two
models as they are now, while the race's length still bounds how long it may go on.

It also bets on every shared event that the challenger is better (:class:`Bet`), so the gate
may judge the race at any event and still promote an equal challenger with a probability no
higher than its significance.

>>> race = RecentRace("binary", challenger=2, baseline=1, window=3)
>>> for truth, challenger, champion in [(1, 0, 1), (1, 0, 1), (1, 1, 0), (1, 1, 0), (1, 1, 0)]:
...     race.update(truth, challenger, champion)
>>> race.seen, race.n, race.challenger_only, race.baseline_only
(5, 3, 3, 0)
>>> RecentRace.from_dict(race.to_dict()).seen
5
>>> race.better.wealth > 1  # the challenger won its last three events
True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from meander.config import Task
from meander.models.betting import Bet
from meander.models.evaluation import PairedRace

__all__ = ["RecentRace"]

_COUNTS = ("both_right", "challenger_only", "baseline_only", "both_wrong")
# A classification event's outcome: which of the four counts it added one to.
_BOTH_RIGHT, _CHALLENGER_ONLY, _BASELINE_ONLY, _BOTH_WRONG = (
    tuple(float(i == j) for j in range(4)) for i in range(4)
)
_SCALE_DECAY = 0.99  # a regression race's error scale follows about its last hundred events


class RecentRace(PairedRace):
    """A :class:`PairedRace` over the last ``window`` shared events; ``seen`` counts them all."""

    def __init__(self, task: Task, challenger: int, baseline: int, *, window: int = 500) -> None:
        super().__init__(task, challenger, baseline)
        self.window = window
        self.seen = 0
        self._outcomes: deque[Any] = deque()
        self.better = Bet()  # evidence that the challenger beats the champion
        self.scale = 0.0  # regression: the typical absolute error, which bounds d in [-1, 1]

    def update(self, y_true: Any, challenger_pred: Any, baseline_pred: Any) -> None:
        if self.task == "regression":
            before = self._snapshot()
            super().update(y_true, challenger_pred, baseline_pred)
            outcome = self._difference(before)
        else:
            # The one count that moves, as PairedRace.update moves it: every racing model of
            # every label comes here, and reading all four counts before and after cost three
            # times the update itself.
            self.n += 1
            if challenger_pred == y_true:
                if baseline_pred == y_true:
                    self.both_right += 1
                    outcome = _BOTH_RIGHT
                else:
                    self.challenger_only += 1
                    outcome = _CHALLENGER_ONLY
            elif baseline_pred == y_true:
                self.baseline_only += 1
                outcome = _BASELINE_ONLY
            else:
                self.both_wrong += 1
                outcome = _BOTH_WRONG
        self.seen += 1
        self._outcomes.append(outcome)
        self.better.update(self._d(outcome))
        if len(self._outcomes) > self.window:
            self._forget(self._outcomes.popleft())

    def _d(self, outcome: tuple[float, ...]) -> float:
        """The event's score in [-1, 1], positive when it favours the challenger."""
        if self.task != "regression":
            return float(outcome[1] - outcome[2])  # challenger_only - baseline_only
        challenger_error, baseline_error = outcome[2], outcome[3]
        # The scale is that of the events before this one, so the bet on it stays predictable.
        scale, typical = self.scale, (challenger_error + baseline_error) / 2
        self.scale = typical if scale <= 0.0 else typical + (scale - typical) * _SCALE_DECAY
        difference = baseline_error - challenger_error
        if scale <= 0.0:
            return 0.0 if not difference else math.copysign(1.0, difference)
        return max(-1.0, min(1.0, difference / (2 * scale)))

    def to_dict(self) -> dict[str, int | float]:
        return (
            super().to_dict()
            | {"seen": self.seen, "window": self.window, "scale": self.scale}
            | self.better.to_dict("better")
        )

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, int | float | str | bytes] | Mapping[bytes, int | float | str | bytes],
    ) -> RecentRace:
        plain = PairedRace.from_dict(data)
        fields = {str(_text(k)): _text(v) for k, v in data.items()}
        race = cls(
            plain.task, plain.challenger, plain.baseline, window=int(fields.get("window", 500))
        )
        race.__dict__.update({k: v for k, v in plain.__dict__.items() if k != "task"})
        race.seen = int(fields.get("seen", plain.n))
        race.scale = float(fields.get("scale", 0.0))
        race.better = Bet.from_dict(fields, "better")
        return race

    def _snapshot(self) -> tuple[float, ...]:
        if self.task == "regression":
            return (self.d_sum, self.d_squares, self.challenger_error_sum, self.baseline_error_sum)
        return tuple(float(getattr(self, name)) for name in _COUNTS)

    def _difference(self, before: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(now - was for now, was in zip(self._snapshot(), before, strict=True))

    def _forget(self, outcome: tuple[float, ...]) -> None:
        self.n -= 1
        if self.task == "regression":
            self.d_sum -= outcome[0]
            self.d_squares -= outcome[1]
            self.challenger_error_sum -= outcome[2]
            self.baseline_error_sum -= outcome[3]
            return
        for name, change in zip(_COUNTS, outcome, strict=True):
            setattr(self, name, getattr(self, name) - int(change))


def _text(value: int | float | str | bytes) -> int | float | str:
    return value.decode() if isinstance(value, bytes) else value
