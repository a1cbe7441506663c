"""Prequential (test-then-train) metrics per model version.

Every label is first used to score the prediction a model made *before* it learned from that label,
so the figures estimate live performance without a held-out set. The update path runs for every
label and every live model version, so it keeps running counts and ring buffers instead of stacking
River metric objects; the tests hold it to River's figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from meander.config import Task, known_task

__all__ = ["Prequential"]

_SMALLEST_PROBABILITY = 1e-15


class _Means:
    """The mean of a value over the whole stream and over its last `size` values."""

    __slots__ = ("_pos", "_recent", "n", "recent_count", "recent_total", "total")

    def __init__(self, size: int) -> None:
        # Zeros stand in for the slots not yet filled, so evicting one needs no branch.
        self._recent = [0.0] * size
        self._pos = 0
        self.n = 0
        self.total = 0.0
        self.recent_count = 0
        self.recent_total = 0.0

    def update(self, value: float) -> None:
        self.n += 1
        self.total += value
        recent = self._recent
        pos = self._pos
        self.recent_total += value - recent[pos]
        recent[pos] = value
        pos += 1
        if pos == len(recent):
            pos = 0
            # Adding and subtracting leaves rounding error behind; one exact sum per turn of the
            # ring keeps it from building up over a long stream, at O(1) amortised cost.
            self.recent_total = math.fsum(recent)
        self._pos = pos
        if self.recent_count < len(recent):
            self.recent_count += 1

    def update_many(self, values: Sequence[float]) -> None:
        """:meth:`update` with each value in turn, to the same bits, at a fraction of the calls."""
        recent, pos, size = self._recent, self._pos, len(self._recent)
        total, recent_total = self.total, self.recent_total
        for value in values:
            total += value
            recent_total += value - recent[pos]
            recent[pos] = value
            pos += 1
            if pos == size:
                pos = 0
                recent_total = math.fsum(recent)
        self.n += len(values)
        self.total, self.recent_total, self._pos = total, recent_total, pos
        self.recent_count = min(size, self.recent_count + len(values))

    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def recent_mean(self) -> float:
        return self.recent_total / self.recent_count if self.recent_count else 0.0

    def to_dict(self) -> dict[str, Any]:
        recent = self._recent[self._pos :] + self._recent[: self._pos]
        return {
            "n": self.n,
            "total": self.total,
            "recent": recent[len(recent) - self.recent_count :],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], size: int) -> _Means:
        means = cls(size)
        for value in data["recent"][-size:]:
            means.update(float(value))
        means.n, means.total = int(data["n"]), float(data["total"])
        return means


class _Confusion:
    """Counts of (true, predicted) label pairs over the whole stream and over the last `size`."""

    __slots__ = ("_pairs", "_pos", "counts", "recent_counts")

    def __init__(self, size: int) -> None:
        self.counts: dict[tuple[Any, Any], int] = {}
        self.recent_counts: dict[tuple[Any, Any], int] = {}
        self._pairs: list[tuple[Any, Any] | None] = [None] * size
        self._pos = 0

    def update(self, pair: tuple[Any, Any]) -> None:
        self.update_many((pair,))

    def update_many(self, pairs: Sequence[tuple[Any, Any]]) -> None:
        """Count each pair in turn."""
        counts, recent, ring, pos, size = (
            self.counts,
            self.recent_counts,
            self._pairs,
            self._pos,
            len(self._pairs),
        )
        for pair in pairs:
            counts[pair] = counts.get(pair, 0) + 1
            evicted = ring[pos]
            if evicted is not None:
                recent[evicted] -= 1
            recent[pair] = recent.get(pair, 0) + 1
            ring[pos] = pair
            pos += 1
            if pos == size:
                pos = 0
        self._pos = pos

    def recent_pairs(self) -> list[tuple[Any, Any]]:
        ordered = self._pairs[self._pos :] + self._pairs[: self._pos]
        return [pair for pair in ordered if pair is not None]


def _positive_label(labels: set[Any]) -> Any:
    if True in labels:  # True == 1 == 1.0, so this covers 0/1 labels as well
        return True
    try:
        ordered = sorted(labels)
    except TypeError:  # labels of mixed types: order them by their text instead
        ordered = sorted(labels, key=str)
    return ordered[1] if len(ordered) > 1 else None


def _accuracy_and_f1(
    counts: Mapping[tuple[Any, Any], int], binary: bool, positive: Any
) -> tuple[float, float]:
    total = right = 0
    hits: dict[Any, int] = {}
    as_true: dict[Any, int] = {}
    as_predicted: dict[Any, int] = {}
    for (truth, predicted), count in counts.items():
        if not count:
            continue
        total += count
        as_true[truth] = as_true.get(truth, 0) + count
        if predicted is not None:  # an untrained model's None is no class of its own
            as_predicted[predicted] = as_predicted.get(predicted, 0) + count
        if truth == predicted:
            right += count
            hits[truth] = hits.get(truth, 0) + count
    if not total:
        return 0.0, 0.0

    def f1(label: Any) -> float:
        hit = hits.get(label, 0)
        return 2 * hit / (as_true.get(label, 0) + as_predicted.get(label, 0)) if hit else 0.0

    if binary:
        return right / total, 0.0 if positive is None else f1(positive)
    classes = as_true.keys() | as_predicted.keys()
    return right / total, sum(f1(label) for label in classes) / len(classes)


class Prequential:
    """Test-then-train metrics of one model version, over the whole stream and a rolling window.

    Classification reports accuracy, F1 and log loss; regression reports MAE and RMSE. Each comes
    twice: over every sample seen and, suffixed `_rolling`, over the last `window` samples.

    - Binary F1 counts `True` (equally `1`) as the positive label when it has been seen; for other
      labels the positive one is the second in sorted order (`"yes"` over `"no"`). Multiclass F1 is
      the macro average over the classes present.
    - A `None` prediction (an untrained model) counts as wrong: no class for classification, a
      prediction of 0.0 for regression, which is what River's untrained regressors return.
    - Log loss is `-log(proba[y_true])` (or `proba[str(y_true)]`, as a served prediction's
      probabilities are keyed in JSON), the probability clipped at 1e-15. Samples without
      probabilities are left out of it, so its rolling window is the last `window` samples that had
      some; its keys appear once one has.
    - Labels must be JSON scalars (bool, int, float or str) for `to_dict`.

    >>> metrics = Prequential("binary", window=2)
    >>> metrics.update(True, True, {True: 0.8, False: 0.2})
    >>> metrics.update(False, True, {True: 0.6, False: 0.4})
    >>> metrics.update(True, None)
    >>> report = metrics.report()
    >>> report["n"], round(report["accuracy"], 4), report["accuracy_rolling"], report["f1"]
    (3, 0.3333, 0.0, 0.5)
    >>> round(report["log_loss"], 4)
    0.5697
    """

    __slots__ = ("_absolute", "_confusion", "_log_loss", "_squared", "n", "task", "window")

    def __init__(self, task: Task, *, window: int = 1_000) -> None:
        if window < 1:
            raise ValueError(f"window must be a positive number of samples, got {window}")
        self.task = known_task(task)
        self.window = window
        self.n = 0
        self._confusion = _Confusion(window)
        self._log_loss = _Means(window)
        self._absolute = _Means(window)
        self._squared = _Means(window)

    def update(self, y_true: Any, y_pred: Any, proba: Mapping[Any, float] | None = None) -> None:
        """Score one prediction against its label."""
        self.n += 1
        if self.task == "regression":
            error = y_true - (0.0 if y_pred is None else y_pred)
            self._absolute.update(abs(error))
            self._squared.update(error * error)
            return
        self._confusion.update((y_true, y_pred))
        if proba:
            # Probabilities that crossed the wire in JSON are keyed by the label's text.
            p = proba.get(y_true, proba.get(str(y_true), 0.0))
            self._log_loss.update(
                -math.log(p if p > _SMALLEST_PROBABILITY else _SMALLEST_PROBABILITY)
            )

    def update_many(
        self,
        y_true: Sequence[Any],
        y_pred: Sequence[Any],
        probas: Sequence[Mapping[Any, float] | None],
    ) -> None:
        """:meth:`update` with each label, prediction and probabilities in turn: the same
        figures to the bit, in one call for a batch.

        >>> one, many = Prequential("binary"), Prequential("binary")
        >>> labels, predicted = [True, False, True], [True, True, None]
        >>> probas = [{"True": 0.9}, None, {"True": 0.2}]
        >>> for y, p, proba in zip(labels, predicted, probas):
        ...     one.update(y, p, proba)
        >>> many.update_many(labels, predicted, probas)
        >>> many.to_dict() == one.to_dict()
        True
        """
        self.n += len(y_true)
        if self.task == "regression":
            errors = [y - (0.0 if p is None else p) for y, p in zip(y_true, y_pred, strict=True)]
            self._absolute.update_many([abs(error) for error in errors])
            self._squared.update_many([error * error for error in errors])
            return
        self._confusion.update_many(list(zip(y_true, y_pred, strict=True)))
        losses = []
        log, smallest = math.log, _SMALLEST_PROBABILITY
        for y, proba in zip(y_true, probas, strict=True):
            if proba:
                p = proba.get(y, proba.get(str(y), 0.0))
                losses.append(-log(p if p > smallest else smallest))
        self._log_loss.update_many(losses)

    @property
    def positive(self) -> Any:
        """The label binary F1 counts as positive; None until it has been seen."""
        labels = {label for pair in self._confusion.counts for label in pair} - {None}
        return _positive_label(labels)

    def report(self) -> dict[str, float]:
        """The current figures, keyed `metric` and `metric_rolling`, plus `n`."""
        report: dict[str, float] = {"n": self.n}
        if self.task == "regression":
            report["mae"], report["mae_rolling"] = (
                self._absolute.mean(),
                self._absolute.recent_mean(),
            )
            report["rmse"] = math.sqrt(self._squared.mean())
            # Rounding in the running sum can leave a zero window a hair below zero.
            report["rmse_rolling"] = math.sqrt(max(self._squared.recent_mean(), 0.0))
            return report
        binary = self.task == "binary"
        positive = self.positive if binary else None
        report["accuracy"], report["f1"] = _accuracy_and_f1(
            self._confusion.counts, binary, positive
        )
        recent = _accuracy_and_f1(self._confusion.recent_counts, binary, positive)
        report["accuracy_rolling"], report["f1_rolling"] = recent
        if self._log_loss.n:
            report["log_loss"] = self._log_loss.mean()
            report["log_loss_rolling"] = self._log_loss.recent_mean()
        return report

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot that `from_dict` restores exactly."""
        data: dict[str, Any] = {"task": self.task, "window": self.window, "n": self.n}
        if self.task == "regression":
            data["absolute_errors"] = self._absolute.to_dict()
            data["squared_errors"] = self._squared.to_dict()
            return data
        counts = self._confusion.counts.items()
        data["confusion"] = [[truth, predicted, count] for (truth, predicted), count in counts]
        data["recent"] = [list(pair) for pair in self._confusion.recent_pairs()]
        data["log_loss"] = self._log_loss.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prequential:
        """Rebuild the metrics from `to_dict`'s snapshot."""
        metrics = cls(data["task"], window=int(data["window"]))
        metrics.n = int(data["n"])
        if metrics.task == "regression":
            metrics._absolute = _Means.from_dict(data["absolute_errors"], metrics.window)
            metrics._squared = _Means.from_dict(data["squared_errors"], metrics.window)
            return metrics
        for truth, predicted in data["recent"][-metrics.window :]:
            metrics._confusion.update((truth, predicted))
        metrics._confusion.counts = {(t, p): int(count) for t, p, count in data["confusion"]}
        metrics._log_loss = _Means.from_dict(data["log_loss"], metrics.window)
        return metrics
