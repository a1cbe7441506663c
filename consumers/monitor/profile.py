"""The statistics of one monitor window: two-sample tests and the summaries shown as a profile.

Everything here works on a whole window at once, with numpy: the monitor only collects values
while events stream by, and calls these when a window closes. When a window has drifted,
:func:`change_point` finds where in it the change began, so that the part after it, not a
mixture of before and after, becomes the new reference. :class:`RunningNumbers` and
:class:`RunningCategories` carry a feature's profile across windows, since the monitor started,
with River's ``stats``.

>>> reference = np.sort(np.random.default_rng(1).normal(0.0, 1.0, 500))
>>> shifted = np.sort(np.random.default_rng(2).normal(1.0, 1.0, 500))
>>> ks_statistic(reference, shifted) > ks_critical_value(500, 500, 1e-4)
True
>>> round(psi({"a": 50, "b": 50}, {"a": 90, "b": 10}), 3)
0.879
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from river import stats

__all__ = [
    "PSI_EPSILON",
    "QUANTILES",
    "RunningCategories",
    "RunningNumbers",
    "category_summary",
    "change_point",
    "ks_critical_value",
    "ks_statistic",
    "log_ratios",
    "most_moved",
    "numeric_summary",
    "psi",
    "ranks",
]

Floats = npt.NDArray[np.float64]

# The share given to a category one side never saw: PSI is infinite without it.
PSI_EPSILON = 1e-4
# A profile lists at most this many categories per feature, the most frequent first.
PROFILE_CATEGORIES = 50
# The quantiles a running profile estimates (River's P-square estimator, one per quantile),
# from at most QUANTILE_SAMPLE random values of each window: a sample estimates them as well
# over many windows, at a fraction of the monitor's time per event.
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
QUANTILE_SAMPLE = 100
# Distinct categories a running profile counts; beyond it the rarest are forgotten.
KEPT_CATEGORIES = 1_000


def ks_statistic(reference: Floats, window: Floats) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical
    distribution functions. Both samples must be sorted.

    >>> ks_statistic(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    0.0
    >>> ks_statistic(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    1.0
    """
    points = np.concatenate((reference, window))
    below_reference = np.searchsorted(reference, points, side="right") / len(reference)
    below_window = np.searchsorted(window, points, side="right") / len(window)
    return float(np.max(np.abs(below_reference - below_window)))


def ks_critical_value(n: int, m: int, significance: float) -> float:
    """The statistic above which two samples of sizes ``n`` and ``m`` differ at ``significance``
    (the asymptotic Kolmogorov distribution, accurate from a few dozen values per sample).

    >>> round(ks_critical_value(1000, 1000, 0.05), 4)
    0.0607
    """
    return _kolmogorov(significance) * math.sqrt((n + m) / (n * m))


def _kolmogorov(significance: float) -> float:
    # The Kolmogorov distribution's upper quantile, to its first term: exact to 1e-5 here.
    return math.sqrt(-math.log(significance / 2) / 2)


def psi(reference: Mapping[Any, int], window: Mapping[Any, int]) -> float:
    """The population stability index of ``window``'s category shares against ``reference``'s:
    the sum over categories of (window share - reference share) * ln(window / reference).
    By convention, under 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a large one.

    >>> psi({"a": 10, "b": 30}, {"a": 20, "b": 60})
    0.0
    """
    _, expected, actual = _both_shares(reference, window)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def log_ratios(reference: Mapping[Any, int], window: Mapping[Any, int]) -> dict[Any, float]:
    """Per category, ln(window share / reference share): how much more likely the window
    makes it. The scores :func:`change_point` takes for categorical values.

    >>> {c: round(r, 3) for c, r in log_ratios({"a": 50, "b": 50}, {"a": 25, "b": 75}).items()}
    {'a': -0.693, 'b': 0.405}
    """
    categories, expected, actual = _both_shares(reference, window)
    return dict(zip(categories, np.log(actual / expected).tolist(), strict=True))


def most_moved(reference: Mapping[Any, int], window: Mapping[Any, int]) -> tuple[Any, float, float]:
    """The category whose share moved most, with its share in ``reference`` and in ``window``.

    >>> most_moved({"a": 50, "b": 50}, {"a": 20, "b": 60, "c": 20})
    ('a', 0.5, 0.2)
    """
    before_total, after_total = sum(reference.values()), sum(window.values())

    def shares(category: Any) -> tuple[float, float]:
        return reference.get(category, 0) / before_total, window.get(category, 0) / after_total

    category = max(
        sorted(reference.keys() | window.keys(), key=repr),
        key=lambda c: abs(shares(c)[1] - shares(c)[0]),
    )
    return category, *shares(category)


def _both_shares(
    reference: Mapping[Any, int], window: Mapping[Any, int]
) -> tuple[list[Any], Floats, Floats]:
    categories = sorted(reference.keys() | window.keys(), key=repr)
    expected = _shares([reference.get(c, 0) for c in categories])
    actual = _shares([window.get(c, 0) for c in categories])
    return categories, expected, actual


def _shares(counts: list[int]) -> Floats:
    values = np.asarray(counts, dtype=np.float64)
    shares: Floats = np.maximum(values / max(values.sum(), 1.0), PSI_EPSILON)
    return shares


def ranks(reference: Floats, values: Floats) -> Floats:
    """Each value's mid-rank in the sorted ``reference``, as a share in [0, 1]: the scores
    :func:`change_point` takes for numeric values.

    >>> ranks(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 9.0]))
    array([0.   , 0.375, 1.   ])
    """
    below = np.searchsorted(reference, values, side="left")
    at_or_below = np.searchsorted(reference, values, side="right")
    shares: Floats = (below + at_or_below) / (2 * len(reference))
    return shares


def change_point(scores: Floats, significance: float = 0.01) -> int:
    """Where the mean of ``scores`` (in arrival order) shifts, as the index of the first value
    after the shift; 0 when it does not shift within them. The CUSUM estimator: the k that
    maximises |sum of (score - mean score) over the first k values|, kept when that excursion
    is significant (a Brownian bridge's supremum follows the Kolmogorov distribution).

    >>> rng = np.random.default_rng(0)
    >>> change_point(np.concatenate((rng.normal(0, 1, 60), rng.normal(1.5, 1, 40))))
    60
    >>> change_point(rng.normal(0, 1, 100))
    0
    """
    centred = scores - scores.mean()
    spread = float(centred.std())
    if len(scores) < 2 or spread == 0.0:
        return 0
    excursion = np.abs(np.cumsum(centred))[:-1]
    end = int(np.argmax(excursion))
    if excursion[end] < _kolmogorov(significance) * spread * math.sqrt(len(scores)):
        return 0
    return end + 1


def numeric_summary(present: Floats, missing: int) -> dict[str, Any]:
    """Count, mean, standard deviation, range and missing rate of a window's values.

    >>> numeric_summary(np.array([1.0, 3.0]), missing=2)
    {'count': 2, 'missing_rate': 0.5, 'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0}
    """
    summary: dict[str, Any] = {
        "count": len(present),
        "missing_rate": _rate(missing, len(present) + missing),
    }
    if len(present):
        summary |= {
            "mean": float(present.mean()),
            "std": float(present.std()),
            "min": float(present.min()),
            "max": float(present.max()),
        }
    return summary


def category_summary(counts: Counter[Any], missing: int) -> dict[str, Any]:
    """Count, the most frequent categories with their counts, and missing rate of a window.

    >>> category_summary(Counter({"FR": 3, "DE": 1}), missing=0)
    {'count': 4, 'missing_rate': 0.0, 'categories': {'FR': 3, 'DE': 1}}
    >>> category_summary(Counter({True: 3}), missing=1)["categories"]
    {'true': 3}
    """
    total = sum(counts.values())
    return {
        "count": total,
        "missing_rate": _rate(missing, total + missing),
        "categories": {
            _label(category): count for category, count in counts.most_common(PROFILE_CATEGORIES)
        },
    }


class RunningNumbers:
    """Count, missing values, mean, variance, range and quantiles of a numeric feature so far,
    fed a window at a time: mean and variance take it as one array, the quantile estimators
    about :data:`QUANTILE_SAMPLE` of its values, one by one in arrival order. The estimates
    (P-square) are close on a steady feature and lag a drifting one, as any summary since the
    start does; the window's summary shows where the feature is now.

    >>> running = RunningNumbers()
    >>> running.update(np.arange(1.0, 101.0), missing=25)
    >>> summary = running.summary()
    >>> summary["count"], summary["missing"], summary["mean"], summary["quantiles"]["p50"]
    (100, 25, 50.5, 50.0)
    """

    def __init__(self) -> None:
        self.var = stats.Var()
        self.quantiles = {name: stats.Quantile(q) for name, q in QUANTILES.items()}
        self.missing = 0
        self.low, self.high = math.inf, -math.inf
        self._rng = np.random.default_rng(0)

    def update(self, present: Floats, missing: int) -> None:
        """Take a window's values (in arrival order: the quantile estimators assume no order)."""
        self.missing += missing
        if not len(present):
            return
        self.var.update_many(present)  # River's batch update, exact as one by one
        self.low, self.high = min(self.low, present.min()), max(self.high, present.max())
        step = len(present) // QUANTILE_SAMPLE
        if step > 1:  # every step-th value from a random start, so no period lines up with it
            present = present[int(self._rng.integers(step)) :: step]
        updates = [estimator.update for estimator in self.quantiles.values()]
        for value in present.tolist():
            for update in updates:
                update(value)

    def summary(self) -> dict[str, Any]:
        count = int(self.var.mean.n)
        summary = _counted(count, self.missing)
        if count:
            summary |= {
                "mean": self.var.mean.get(),
                "variance": self.var.get() if count > 1 else 0.0,
                "min": float(self.low),
                "max": float(self.high),
                "quantiles": {name: q.get() for name, q in self.quantiles.items()},
            }
        return summary


class RunningCategories:
    """Count, missing values and the most frequent values of a categorical or boolean feature
    so far. Counts are exact up to :data:`KEPT_CATEGORIES` distinct values; past that, the
    rarest are forgotten, so an identifier-like feature cannot grow the monitor without bound.

    >>> running = RunningCategories()
    >>> running.update(Counter({"FR": 3, "DE": 1}), missing=1)
    >>> running.update(Counter({"DE": 4}), missing=0)
    >>> running.summary()["top"]
    {'DE': 5, 'FR': 3}
    """

    def __init__(self) -> None:
        self.counts: Counter[Any] = Counter()
        self.missing = 0

    def update(self, counts: Counter[Any], missing: int) -> None:
        self.counts.update(counts)
        self.missing += missing
        if len(self.counts) > 2 * KEPT_CATEGORIES:
            self.counts = Counter(dict(self.counts.most_common(KEPT_CATEGORIES)))

    def summary(self) -> dict[str, Any]:
        top = {_label(c): n for c, n in self.counts.most_common(PROFILE_CATEGORIES)}
        return _counted(self.counts.total(), self.missing) | {"top": top}


def _counted(count: int, missing: int) -> dict[str, Any]:
    return {"count": count, "missing": missing, "missing_rate": _rate(missing, count + missing)}


def _label(category: Any) -> str:
    # JSON object keys are strings; booleans read as JSON spells them.
    if isinstance(category, bool):
        return "true" if category else "false"
    return str(category)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
