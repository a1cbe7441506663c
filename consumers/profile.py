"""The statistics of one monitor window: two-sample tests and the summaries shown as a profile.

Everything here works on a whole window at once, with numpy: the monitor only collects values
while events stream by, and calls these when a window closes.

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

__all__ = [
    "PSI_EPSILON",
    "category_summary",
    "ks_critical_value",
    "ks_statistic",
    "numeric_summary",
    "psi",
]

Floats = npt.NDArray[np.float64]

# The share given to a category one side never saw: PSI is infinite without it.
PSI_EPSILON = 1e-4
# A profile lists at most this many categories per feature, the most frequent first.
PROFILE_CATEGORIES = 50


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
    return math.sqrt(-math.log(significance / 2) / 2) * math.sqrt((n + m) / (n * m))


def psi(reference: Mapping[Any, int], window: Mapping[Any, int]) -> float:
    """The population stability index of ``window``'s category shares against ``reference``'s:
    the sum over categories of (window share - reference share) * ln(window / reference).
    By convention, under 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a large one.

    >>> psi({"a": 10, "b": 30}, {"a": 20, "b": 60})
    0.0
    """
    categories = list(reference.keys() | window.keys())
    expected = _shares([reference.get(c, 0) for c in categories])
    actual = _shares([window.get(c, 0) for c in categories])
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _shares(counts: list[int]) -> Floats:
    values = np.asarray(counts, dtype=np.float64)
    shares: Floats = np.maximum(values / max(values.sum(), 1.0), PSI_EPSILON)
    return shares


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


def _label(category: Any) -> str:
    # JSON object keys are strings; booleans read as JSON spells them.
    if isinstance(category, bool):
        return "true" if category else "false"
    return str(category)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
