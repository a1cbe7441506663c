"""Prequential metrics against River's on seeded streams."""

from __future__ import annotations

import json
import math
import pickle
import random
from typing import Any

import pytest
from river import metrics, utils

from meander.config import TASKS
from meander.models.evaluation import Prequential

WINDOW = 50
EVENTS = 1_200  # many turns of the ring, so eviction and the periodic exact resum both run


def _river(metric: type[Any], **kwargs: Any) -> tuple[Any, Any]:
    return metric(**kwargs), utils.Rolling(metric, window_size=WINDOW, **kwargs)


def _feed(pair: tuple[Any, Any], y_true: Any, y_pred: Any) -> None:
    for metric in pair:
        metric.update(y_true, y_pred)


def _assert_matches(report: dict[str, float], key: str, pair: tuple[Any, Any]) -> None:
    assert report[key] == pytest.approx(pair[0].get(), abs=1e-9)
    assert report[f"{key}_rolling"] == pytest.approx(pair[1].get(), abs=1e-9)


def _binary_stream(seed: int, labels: tuple[Any, Any]) -> list[tuple[Any, Any, dict[Any, float]]]:
    rng = random.Random(seed)
    stream = []
    for _ in range(EVENTS):
        y_true = labels[rng.random() < 0.4]
        p = rng.random()
        stream.append((y_true, labels[p > 0.5], {labels[1]: p, labels[0]: 1 - p}))
    return stream


def test_binary_metrics_match_river_at_every_step() -> None:
    ours = Prequential("binary", window=WINDOW)
    accuracy, f1, log_loss = _river(metrics.Accuracy), _river(metrics.F1), _river(metrics.LogLoss)
    for y_true, y_pred, proba in _binary_stream(seed=7, labels=(False, True)):
        ours.update(y_true, y_pred, proba)
        _feed(accuracy, y_true, y_pred)
        _feed(f1, y_true, y_pred)
        _feed(log_loss, y_true, proba)
        report = ours.report()
        _assert_matches(report, "accuracy", accuracy)
        _assert_matches(report, "f1", f1)
        _assert_matches(report, "log_loss", log_loss)
    assert report["n"] == EVENTS


@pytest.mark.parametrize(("labels", "positive"), [((0, 1), 1), (("no", "yes"), "yes")])
def test_binary_f1_positive_label(labels: tuple[Any, Any], positive: Any) -> None:
    ours = Prequential("binary", window=WINDOW)
    # River 0.26's F1 reads a non-boolean pos_val from a confusion matrix it filled with booleans
    # (so it scores 0), hence the reference sees "is it the positive label" instead.
    f1 = _river(metrics.F1)
    for y_true, y_pred, proba in _binary_stream(seed=3, labels=labels):
        ours.update(y_true, y_pred, proba)
        _feed(f1, y_true == positive, y_pred == positive)
    assert ours.positive == positive
    report = ours.report()
    _assert_matches(report, "f1", f1)
    assert 0.3 < report["f1"] < 0.7


def test_positive_label_before_and_after_both_labels_appear() -> None:
    ours = Prequential("binary")
    ours.update("no", "no")
    assert ours.positive is None
    assert ours.report()["f1"] == 0.0
    ours.update("yes", "yes")
    assert ours.positive == "yes"
    assert ours.report()["f1"] == 1.0
    mixed = Prequential("binary")
    mixed.update("b", 2)  # labels of two types still yield a positive label, by their text
    assert mixed.positive == "b"


def test_multiclass_metrics_match_river() -> None:
    rng = random.Random(11)
    ours = Prequential("multiclass", window=WINDOW)
    accuracy, f1 = _river(metrics.Accuracy), _river(metrics.MacroF1)
    cross_entropy = _river(metrics.CrossEntropy)
    for _ in range(EVENTS):
        y_true = rng.choice("abcd")
        weights = {label: rng.random() + (label == y_true) for label in "abcd"}
        total = sum(weights.values())
        proba = {label: weight / total for label, weight in weights.items()}
        # A rare class drops in and out of the window, as classes do on a live stream.
        y_pred = "e" if rng.random() < 0.01 else max(proba, key=proba.__getitem__)
        ours.update(y_true, y_pred, proba)
        _feed(accuracy, y_true, y_pred)
        _feed(f1, y_true, y_pred)
        _feed(cross_entropy, y_true, proba)
        report = ours.report()
        _assert_matches(report, "accuracy", accuracy)
        _assert_matches(report, "f1", f1)
        _assert_matches(report, "log_loss", cross_entropy)


def test_regression_metrics_match_river() -> None:
    rng = random.Random(5)
    ours = Prequential("regression", window=WINDOW)
    mae, rmse = _river(metrics.MAE), _river(metrics.RMSE)
    for _ in range(EVENTS):
        y_true = rng.gauss(10.0, 3.0)
        y_pred = y_true + rng.gauss(0.5, 2.0)
        ours.update(y_true, y_pred)
        _feed(mae, y_true, y_pred)
        _feed(rmse, y_true, y_pred)
        report = ours.report()
        _assert_matches(report, "mae", mae)
        _assert_matches(report, "rmse", rmse)
    assert set(report) == {"n", "mae", "mae_rolling", "rmse", "rmse_rolling"}


def test_none_prediction_counts_as_wrong() -> None:
    classifier = Prequential("multiclass")
    classifier.update("a", None)
    classifier.update("a", "a")
    report = classifier.report()
    assert report["accuracy"] == 0.5
    # "a": precision 1, recall 1/2; None is no class of its own, so it does not dilute the mean.
    assert report["f1"] == pytest.approx(2 / 3)
    regressor = Prequential("regression")
    regressor.update(3.0, None)
    assert regressor.report()["mae"] == 3.0


def test_log_loss_skips_missing_probabilities_and_clips() -> None:
    ours = Prequential("binary", window=2)
    ours.update(True, True)
    ours.update(True, True, {})
    assert "log_loss" not in ours.report()
    ours.update(True, False, {False: 1.0})  # no probability for the truth: clipped at 1e-15
    ours.update(True, True, {True: 0.5, False: 0.5})
    ours.update(True, True, {True: 1.0})
    report = ours.report()
    assert report["log_loss"] == pytest.approx((-math.log(1e-15) + math.log(2)) / 3)
    # The window holds the last two samples that had probabilities, not the last two samples.
    assert report["log_loss_rolling"] == pytest.approx(math.log(2) / 2)
    assert report["n"] == 5


def test_rolling_window_forgets_old_samples() -> None:
    ours = Prequential("binary", window=3)
    for _ in range(5):
        ours.update(True, False)
    for _ in range(3):
        ours.update(True, True)
    report = ours.report()
    assert report["accuracy"] == 3 / 8
    assert report["accuracy_rolling"] == 1.0
    assert report["f1_rolling"] == 1.0


def test_empty_report() -> None:
    assert Prequential("binary").report() == {
        "n": 0,
        "accuracy": 0.0,
        "f1": 0.0,
        "accuracy_rolling": 0.0,
        "f1_rolling": 0.0,
    }
    assert Prequential("regression").report()["rmse_rolling"] == 0.0


def _restored(metrics_: Prequential, how: str) -> Prequential:
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(metrics_))
    else:
        restored = Prequential.from_dict(json.loads(json.dumps(metrics_.to_dict())))
    assert isinstance(restored, Prequential)
    return restored


@pytest.mark.parametrize("how", ["json", "pickle"])
@pytest.mark.parametrize("task", TASKS)
def test_restored_metrics_carry_on_as_if_uninterrupted(task: Any, how: str) -> None:
    rng = random.Random(17)

    def event() -> tuple[Any, Any, dict[Any, float] | None]:
        if task == "regression":
            return rng.random(), rng.choice([None, rng.random()]), None
        labels = [True, False] if task == "binary" else [0, 1, 2]
        p = rng.random()
        proba = rng.choice([None, {labels[0]: p, labels[1]: 1 - p}])
        return rng.choice(labels), rng.choice([*labels, None]), proba

    uninterrupted = Prequential(task, window=WINDOW)
    for _ in range(WINDOW * 3 + 7):  # stop mid-turn of the ring
        uninterrupted.update(*event())
    restored = _restored(uninterrupted, how)
    assert restored.report() == pytest.approx(uninterrupted.report(), abs=1e-12)
    for _ in range(WINDOW * 2):
        y_true, y_pred, proba = event()
        uninterrupted.update(y_true, y_pred, proba)
        restored.update(y_true, y_pred, proba)
        assert restored.report() == pytest.approx(uninterrupted.report(), abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"task": "ranking"}, "unknown task 'ranking'"), ({"task": "binary", "window": 0}, "window")],
)
def test_invalid_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Prequential(**kwargs)
