"""Races: a challenger and the champion scored on the same labelled events.

:class:`PairedRace` counts the paired outcomes over every shared event. A model that starts
after a drift learns as it races, so over the whole race it carries the errors of its first
events: :class:`RecentRace`, the race the gate judges, keeps the paired outcomes of the last
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

from meander.config import TASKS, Task, known_task
from meander.models.betting import Bet

__all__ = ["Outcome", "PairedRace", "RecentRace"]

_RACE_COUNTS = ("both_right", "challenger_only", "baseline_only", "both_wrong")
_RACE_SUMS = ("d_sum", "d_squares", "challenger_error_sum", "baseline_error_sum")
Outcome = tuple[float, float, float, float]
"""What one event added to a race's four counts, or to its four sums for regression."""
_BOTH_RIGHT: Outcome = (1.0, 0.0, 0.0, 0.0)
_CHALLENGER_ONLY: Outcome = (0.0, 1.0, 0.0, 0.0)
_BASELINE_ONLY: Outcome = (0.0, 0.0, 1.0, 0.0)
_BOTH_WRONG: Outcome = (0.0, 0.0, 0.0, 1.0)
_SCALE_DECAY = 0.99  # a regression race's error scale follows about its last hundred events


class PairedRace:
    """A challenger and a baseline (the champion) scored on the same labelled events.

    Classification counts the four outcomes of each pair; regression keeps the number of events
    and the sum and sum of squares of `d = |baseline error| - |challenger error|` (positive `d`
    favours the challenger), plus each model's summed absolute error. A None prediction counts as
    wrong (0.0 for regression), as in `Prequential`.

    `to_dict` is a flat mapping of numbers, so a race can live in a Redis hash; the task is stored
    as its index in `TASKS`. `from_dict` also takes the str or bytes values Redis hands back.

    >>> race = PairedRace("binary", challenger=2, baseline=1)
    >>> for truth, challenger, champion in [(1, 1, 1), (0, 0, 1), (1, 1, 0), (0, 1, 0)]:
    ...     _ = race.update(truth, challenger, champion)
    >>> race.n, race.challenger_score, race.baseline_score
    (4, 0.75, 0.5)
    >>> race.challenger_only, race.baseline_only, race.gain
    (2, 1, 0.25)
    >>> PairedRace.from_dict(race.to_dict()).to_dict() == race.to_dict()
    True
    """

    def __init__(self, task: Task, challenger: int, baseline: int) -> None:
        self.task = known_task(task)
        self.challenger = challenger
        self.baseline = baseline
        self.n = 0
        self.both_right = self.challenger_only = self.baseline_only = self.both_wrong = 0
        self.d_sum = self.d_squares = 0.0
        self.challenger_error_sum = self.baseline_error_sum = 0.0

    def update(self, y_true: Any, challenger_pred: Any, baseline_pred: Any) -> Outcome:
        """Score both models' predictions for one event against its label; returns what the
        event added to each count (or sum, for regression), in ``to_dict``'s order."""
        self.n += 1
        if self.task == "regression":
            challenger_error = abs(y_true - (0.0 if challenger_pred is None else challenger_pred))
            baseline_error = abs(y_true - (0.0 if baseline_pred is None else baseline_pred))
            d = baseline_error - challenger_error
            self.d_sum += d
            self.d_squares += d * d
            self.challenger_error_sum += challenger_error
            self.baseline_error_sum += baseline_error
            return d, d * d, challenger_error, baseline_error
        if challenger_pred == y_true:
            if baseline_pred == y_true:
                self.both_right += 1
                return _BOTH_RIGHT
            self.challenger_only += 1
            return _CHALLENGER_ONLY
        if baseline_pred == y_true:
            self.baseline_only += 1
            return _BASELINE_ONLY
        self.both_wrong += 1
        return _BOTH_WRONG

    @property
    def challenger_score(self) -> float:
        """The challenger's accuracy, or its MAE for regression, on the shared events."""
        return self._score(self.challenger_only, self.challenger_error_sum)

    @property
    def baseline_score(self) -> float:
        """The baseline's accuracy, or its MAE for regression, on the shared events."""
        return self._score(self.baseline_only, self.baseline_error_sum)

    @property
    def gain(self) -> float:
        """How much better the challenger did per shared event: accuracy, or absolute error for
        regression (0.0 before any event); negative when the baseline did better."""
        if not self.n:
            return 0.0
        if self.task == "regression":
            return self.d_sum / self.n
        return (self.challenger_only - self.baseline_only) / self.n

    def _score(self, right_alone: int, error_sum: float) -> float:
        if not self.n:
            return 0.0
        if self.task == "regression":
            return error_sum / self.n
        return (self.both_right + right_alone) / self.n

    def to_dict(self) -> dict[str, int | float]:
        """A flat str -> number snapshot (for a Redis hash)."""
        data: dict[str, int | float] = {
            "task": TASKS.index(self.task),
            "challenger": self.challenger,
            "baseline": self.baseline,
            "n": self.n,
        }
        names = _RACE_SUMS if self.task == "regression" else _RACE_COUNTS
        data.update({name: getattr(self, name) for name in names})
        return data

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, int | float | str | bytes] | Mapping[bytes, int | float | str | bytes],
    ) -> PairedRace:
        """Rebuild a race from `to_dict`'s snapshot, or from the hash Redis returns for it."""
        fields = {_text(name): _text(value) for name, value in data.items()}
        try:
            code = int(fields["task"])
            if not 0 <= code < len(TASKS):
                raise ValueError(f"task code {code} is not an index into {TASKS}")
            task = TASKS[code]
            race = cls(task, challenger=int(fields["challenger"]), baseline=int(fields["baseline"]))
            race.n = int(fields["n"])
            for name in _RACE_SUMS if task == "regression" else _RACE_COUNTS:
                setattr(race, name, (float if task == "regression" else int)(fields[name]))
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"not a PairedRace snapshot ({error!r}): pass the mapping PairedRace.to_dict made"
            ) from error
        return race


class RecentRace(PairedRace):
    """A :class:`PairedRace` over the last ``window`` shared events; ``seen`` counts them all."""

    def __init__(
        self,
        task: Task,
        challenger: int,
        baseline: int,
        *,
        window: int = 500,
        tolerance: float | None = None,
    ) -> None:
        super().__init__(task, challenger, baseline)
        self.window = window
        self.seen = 0
        self._outcomes: deque[Any] = deque()
        self.better = Bet()  # evidence that the challenger beats the champion
        self.scale = 0.0  # regression: the typical absolute error, which bounds d in [-1, 1]
        # A watch after a promotion: evidence that the new champion is at most ``tolerance``
        # worse than the one it replaced (see _no_worse), and that it is worse by more.
        self.tolerance = tolerance
        self.no_worse = None if tolerance is None else Bet()
        self.worse = None if tolerance is None else Bet()

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
        scale = self.scale  # the scale of the events before this one
        d = self._d(outcome)
        self.better.update(d)
        if self.no_worse is not None and self.worse is not None and self.tolerance is not None:
            score, margin = self._no_worse(outcome, d, scale, self.tolerance)
            self.no_worse.update(score, margin)
            self.worse.update(-score, -margin)  # the opposite null: at most the tolerance worse
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
        return _scaled(baseline_error - challenger_error, scale)

    def _no_worse(
        self, outcome: tuple[float, ...], d: float, scale: float, tolerance: float
    ) -> tuple[float, float]:
        """The event's score and margin for the bet that the challenger is at most
        ``tolerance`` worse: that much less accurate, or an MAE at most ``1 + tolerance``
        times the baseline's."""
        if self.task != "regression":
            return d, -tolerance
        challenger_error, baseline_error = outcome[2], outcome[3]
        return _scaled((1 + tolerance) * baseline_error - challenger_error, scale), 0.0

    def to_dict(self) -> dict[str, int | float]:
        data = (
            super().to_dict()
            | {"seen": self.seen, "window": self.window, "scale": self.scale}
            | self.better.to_dict("better")
        )
        if self.no_worse is not None and self.worse is not None and self.tolerance is not None:
            data |= {"tolerance": self.tolerance} | self.no_worse.to_dict("no_worse")
            data |= self.worse.to_dict("worse")
        return data

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
        if "tolerance" in fields:
            race.tolerance = float(fields["tolerance"])
            race.no_worse = Bet.from_dict(fields, "no_worse")
            race.worse = Bet.from_dict(fields, "worse")
        return race

    def _forget(self, outcome: tuple[float, ...]) -> None:
        self.n -= 1
        if self.task == "regression":
            self.d_sum -= outcome[0]
            self.d_squares -= outcome[1]
            self.challenger_error_sum -= outcome[2]
            self.baseline_error_sum -= outcome[3]
            return
        for name, change in zip(_RACE_COUNTS, outcome, strict=True):
            setattr(self, name, getattr(self, name) - int(change))


def _scaled(difference: float, scale: float) -> float:
    """A difference of errors as a score in [-1, 1], ``scale`` being the typical error."""
    if scale <= 0.0:
        return 0.0 if not difference else math.copysign(1.0, difference)
    return max(-1.0, min(1.0, difference / (2 * scale)))


def _text(value: int | float | str | bytes) -> int | float | str:
    return value.decode() if isinstance(value, bytes) else value
