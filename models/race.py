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
...     _ = race.update(truth, challenger, champion)
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
from meander.models.evaluation import Outcome, PairedRace

__all__ = ["RecentRace"]

_COUNTS = ("both_right", "challenger_only", "baseline_only", "both_wrong")
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

    def update(self, y_true: Any, challenger_pred: Any, baseline_pred: Any) -> Outcome:
        if self.task == "regression":
            # The sums' own changes rather than the event's terms: forgetting them undoes each
            # to the bit.
            before = self._sums()
            super().update(y_true, challenger_pred, baseline_pred)
            now = self._sums()
            outcome: Outcome = (
                now[0] - before[0],
                now[1] - before[1],
                now[2] - before[2],
                now[3] - before[3],
            )
        else:
            outcome = super().update(y_true, challenger_pred, baseline_pred)
        self.seen += 1
        self._outcomes.append(outcome)
        self.better.update(self._d(outcome))
        if len(self._outcomes) > self.window:
            self._forget(self._outcomes.popleft())
        return outcome

    def _sums(self) -> Outcome:
        return self.d_sum, self.d_squares, self.challenger_error_sum, self.baseline_error_sum

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
