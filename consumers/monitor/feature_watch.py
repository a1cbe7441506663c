"""What the monitor keeps per feature: a reference window, a drift test, and a missing-value watch.

When a window closes, each watch compares the window's values with its reference: numeric
features with a two-sample Kolmogorov-Smirnov test, categorical and boolean ones with the
population stability index. After an alert, the drifted window from where the change began
(its CUSUM change point) becomes the reference, so one change raises one alert rather than one
per window, even when it began in the middle of a window. A numeric feature also feeds every
value to a River detector (``drift.data_detector``), which reports the first change it finds in
a window.

Severity is ``warning``; a statistic at :data:`CRITICAL_FACTOR` times its threshold or more is
``critical`` (a KS gap of 0.3 against a threshold of 0.1, a PSI of 0.6 against 0.2). A River
detector has no threshold to compare with, so its alerts are warnings.

>>> from meander.config import DriftSettings, Feature
>>> watch = watch_for("fraud", "country", Feature(type="categorical"), DriftSettings())
>>> alerts, profile = watch.observe([{"country": "FR"}] * 5 + [{}] * 5, list("abcdefghij"),
...                                 at_event="j")
>>> [a.kind for a in alerts], profile["missing_rate"]
(['missing_values'], 0.5)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from river import base

from meander.config import DriftSettings, Feature
from meander.consumers.monitor.profile import (
    Floats,
    RunningCategories,
    RunningNumbers,
    category_summary,
    change_point,
    ks_critical_value,
    ks_statistic,
    log_ratios,
    most_moved,
    numeric_summary,
    psi,
    ranks,
)
from meander.events import Alert
from meander.exceptions import ConfigError
from meander.models.specs import build_detector
from meander.schema import shown

__all__ = ["CRITICAL_FACTOR", "MIN_VALUES", "FeatureWatch", "Latch", "severity", "watch_for"]

CRITICAL_FACTOR = 3.0
# A window with fewer values than this is not tested: the test could not tell anything apart.
MIN_VALUES = 10

Rows = Sequence[Mapping[str, Any]]


def severity(value: float, threshold: float) -> Literal["warning", "critical"]:
    """``critical`` at :data:`CRITICAL_FACTOR` times the threshold or more, else ``warning``."""
    return "critical" if value >= CRITICAL_FACTOR * threshold else "warning"


class Latch:
    """Fires once when a rate rises above its threshold, and re-arms only once the rate is back
    to half the threshold: a lasting problem raises one alert, not one per window.

    >>> latch = Latch(0.1)
    >>> [latch.crossed(rate) for rate in (0.2, 0.3, 0.08, 0.04, 0.2)]
    [True, False, False, False, True]
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.armed = True

    def crossed(self, rate: float) -> bool:
        if rate <= self.threshold / 2:
            self.armed = True
        if self.armed and rate > self.threshold:
            self.armed = False
            return True
        return False


class FeatureWatch(ABC):
    """One feature's reference and tests; :meth:`observe` takes each closed window."""

    overall: RunningNumbers | RunningCategories  # the profile since the monitor started

    def __init__(self, stream: str, name: str, drift: DriftSettings) -> None:
        self.stream, self.name, self.drift = stream, name, drift
        self.missing = Latch(drift.missing_rate_threshold)
        self.last_test: dict[str, float | str] | None = None

    @abstractmethod
    def observe(
        self, rows: Rows, ids: Sequence[str], *, at_event: str | None
    ) -> tuple[list[Alert], dict[str, Any]]:
        """The alerts that ``rows`` (the features of the window's valid events, in order, with
        their ``ids``) raise, and the feature's profile over them; ``at_event`` is the id of
        the window's last event, valid or not."""

    def _missing_values(self, missing: int, total: int, at_event: str | None) -> list[Alert]:
        rate = missing / total if total else 0.0
        if not self.missing.crossed(rate):
            return []
        threshold = self.missing.threshold
        return [
            self._alert(
                kind="missing_values",
                statistic="missing_rate",
                value=rate,
                threshold=threshold,
                severity=severity(rate, threshold),
                window=total,
                at_event=at_event,
                message=f"feature {self.name!r} is missing in {rate:.1%} of the last {total} "
                f"valid events (threshold {threshold:.1%})",
            )
        ]

    def _alert(self, **fields: Any) -> Alert:
        return Alert(stream=self.stream, feature=self.name, **fields)


class NumericWatch(FeatureWatch):
    """KS test of each window against the reference, and a River detector fed every value."""

    def __init__(self, stream: str, name: str, drift: DriftSettings) -> None:
        super().__init__(stream, name, drift)
        self.reference: Floats | None = None
        self.overall: RunningNumbers = RunningNumbers()
        self.detector = _numeric_detector(drift.data_detector) if drift.data_detector else None
        self._fed = 0  # values since the detector last fired, for detectors without a width

    def observe(
        self, rows: Rows, ids: Sequence[str], *, at_event: str | None
    ) -> tuple[list[Alert], dict[str, Any]]:
        column = np.array([row.get(self.name) for row in rows], dtype=np.float64)
        present_at = np.flatnonzero(~np.isnan(column))
        present = column[present_at]
        missing = len(column) - len(present)
        self.overall.update(present, missing)
        alerts = self._missing_values(missing, len(column), at_event)
        if self.detector is not None:
            alerts += self._detect(self.detector, present, present_at, ids)
        alerts += self._test(present, [ids[i] for i in present_at.tolist()], at_event)
        return alerts, numeric_summary(present, missing)

    def _detect(
        self, detector: base.DriftDetector, present: Floats, positions: Any, ids: Sequence[str]
    ) -> list[Alert]:
        found: Alert | None = None
        for position, value in zip(positions.tolist(), present.tolist(), strict=True):
            detector.update(value)
            self._fed += 1
            if detector.drift_detected:
                # Later detections in the same window are the same change settling.
                found = found or self._detected(detector, value, ids[position])
                self._fed = 0
        return [] if found is None else [found]

    def _detected(self, detector: base.DriftDetector, value: float, event_id: str) -> Alert:
        kind = type(detector).__name__
        # ADWIN estimates the mean of what it kept; other detectors report the value they fired at.
        estimation = getattr(detector, "estimation", None)
        shown = float(value if estimation is None else estimation)
        found = (
            f"the mean it now estimates is {shown:.4g}"
            if estimation is not None
            else (f"at the value {shown:.4g}")
        )
        return self._alert(
            kind="data_drift",
            statistic=kind.lower(),
            value=shown,
            severity="warning",
            window=int(getattr(detector, "width", self._fed)),
            at_event=event_id,
            message=f"feature {self.name!r}: {kind} detected a change; {found}",
        )

    def _test(self, present: Floats, ids: list[str], at_event: str | None) -> list[Alert]:
        window = np.sort(present)
        if len(window) < MIN_VALUES:
            return []
        if self.reference is None:
            self.reference = window
            return []
        statistic = ks_statistic(self.reference, window)
        critical = ks_critical_value(len(self.reference), len(window), self.drift.ks_significance)
        self.last_test = {"statistic": "ks", "value": statistic, "threshold": critical}
        if statistic <= critical:
            return []
        start = _usable_start(change_point(ranks(self.reference, present)), len(present))
        before, after = float(self.reference.mean()), float(present[start:].mean())
        self.reference = np.sort(present[start:])
        return [
            self._alert(
                kind="data_drift",
                statistic="ks",
                value=statistic,
                threshold=critical,
                severity=severity(statistic, critical),
                window=len(window),
                at_event=at_event,
                message=f"feature {self.name!r} changed distribution{_since(ids, start)}: "
                f"KS {statistic:.3f} > {critical:.3f} (p < {self.drift.ks_significance:g}); "
                f"mean {before:.4g} -> {after:.4g}",
            )
        ]


class CategoricalWatch(FeatureWatch):
    """PSI of each window's category shares against the reference's (booleans too)."""

    def __init__(self, stream: str, name: str, drift: DriftSettings) -> None:
        super().__init__(stream, name, drift)
        self.reference: Counter[Any] | None = None
        self.overall: RunningCategories = RunningCategories()

    def observe(
        self, rows: Rows, ids: Sequence[str], *, at_event: str | None
    ) -> tuple[list[Alert], dict[str, Any]]:
        column = [row.get(self.name) for row in rows]
        counts = Counter(column)
        missing = counts.pop(None, 0)
        self.overall.update(counts, missing)
        alerts = self._missing_values(missing, len(rows), at_event)
        present = [(value, ids[i]) for i, value in enumerate(column) if value is not None]
        alerts += self._test(counts, present, at_event)
        return alerts, category_summary(counts, missing)

    def _test(
        self, window: Counter[Any], present: list[tuple[Any, str]], at_event: str | None
    ) -> list[Alert]:
        total = window.total()
        if total < MIN_VALUES:
            return []
        if self.reference is None:
            self.reference = window
            return []
        threshold = self.drift.psi_threshold
        statistic = psi(self.reference, window)
        self.last_test = {"statistic": "psi", "value": statistic, "threshold": threshold}
        if statistic <= threshold:
            return []
        category, before, after = most_moved(self.reference, window)
        ratio = log_ratios(self.reference, window)
        scores = np.array([ratio[value] for value, _ in present])
        start = _usable_start(change_point(scores), len(present))
        self.reference = Counter(value for value, _ in present[start:])
        return [
            self._alert(
                kind="data_drift",
                statistic="psi",
                value=statistic,
                threshold=threshold,
                severity=severity(statistic, threshold),
                window=total,
                at_event=at_event,
                message=f"feature {self.name!r} changed category shares"
                f"{_since([event for _, event in present], start)}: "
                f"PSI {statistic:.3f} > {threshold:g}; {shown(category)} moved most, "
                f"{before:.1%} -> {after:.1%}",
            )
        ]


def watch_for(stream: str, name: str, feature: Feature, drift: DriftSettings) -> FeatureWatch:
    """The watch that suits ``feature``'s type."""
    if feature.type == "numeric":
        return NumericWatch(stream, name, drift)
    return CategoricalWatch(stream, name, drift)


def _numeric_detector(spec: str) -> base.DriftDetector:
    detector = build_detector(spec)
    if not isinstance(detector, base.DriftDetector):
        raise ConfigError(
            f"drift.data_detector {spec!r} watches a stream of booleans (errors), not feature "
            "values; use drift.ADWIN, drift.KSWIN or drift.PageHinkley, or '' to disable it"
        )
    return detector


def _usable_start(start: int, count: int) -> int:
    # Too few values after the change to stand as a reference: keep the whole window.
    return start if count - start >= MIN_VALUES else 0


def _since(ids: Sequence[str], start: int) -> str:
    return f" from around event {ids[start]}" if start else ""
