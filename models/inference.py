"""Scoring with a River model, one event or a batch, the same way everywhere.

The predictor, the learner (test-then-train), the trainer and batch scoring all go through
:func:`predict_one` and :func:`predict_many`, so a model answers the same wherever it runs.
Classifiers answer with the most probable label and the probabilities; regressors with a number.

>>> from river import tree
>>> model = tree.HoeffdingTreeClassifier()
>>> predict_one(model, {"x": 1.0}, "binary")
(None, None)
>>> model.learn_one({"x": 1.0}, True)
>>> predict_one(model, {"x": 1.0}, "binary")
(True, {'True': 1.0})
>>> diverged((float("nan"), None))
'it answered nan: it has diverged'
>>> diverged((True, {"True": 0.9, "False": 0.1})) is None
True
>>> label_problem(0.5, "binary")
'label 0.5 (float) is not a class label: use a bool, an int or a string'
>>> label_problem("maybe", "binary", classes=frozenset({False, True}))
"label 'maybe' is not one of the stream's classes: False, True"
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from meander.config import StreamConfig
from meander.events import Prediction
from meander.schema import LARGEST, shown

__all__ = [
    "Scored",
    "clean",
    "diverged",
    "label_problem",
    "predict_many",
    "predict_one",
    "prediction_problem",
]

Scored = tuple[Any, dict[str, float] | None]


def clean(features: Mapping[str, Any]) -> dict[str, Any]:
    """The features a model sees: missing (None) values are left out, as River expects."""
    if None not in features.values():  # the common case: one pass in C, then a plain copy
        return dict(features)
    return {name: value for name, value in features.items() if value is not None}


def predict_one(model: Any, x: Mapping[str, Any], task: str) -> Scored:
    """(prediction, probabilities); (None, None) when the model has learnt nothing yet."""
    if task == "regression":
        return _plain(model.predict_one(x)), None
    proba = model.predict_proba_one(x)
    if not proba:
        return None, None
    best = max(proba, key=proba.__getitem__)
    return _plain(best), {str(label): float(p) for label, p in proba.items()}


def predict_many(model: Any, xs: Sequence[Mapping[str, Any]], task: str) -> list[Scored]:
    """Score a batch; River's ``*_many`` with a DataFrame where the model has it and the
    batch has no missing values, ``*_one`` otherwise."""
    method = "predict_many" if task == "regression" else "predict_proba_many"
    if len(xs) < 16 or not hasattr(model, method) or not _complete(xs):
        return [predict_one(model, x, task) for x in xs]
    import pandas as pd  # here: a process that never scores a large batch starts without it

    frame = pd.DataFrame.from_records(list(xs))
    try:
        answer = getattr(model, method)(frame)
    except (NotImplementedError, AttributeError, KeyError, ValueError, TypeError):
        # Some estimators only pretend to batch (or need every class seen): fall back.
        return [predict_one(model, x, task) for x in xs]
    if task == "regression":
        return [(_plain(y), None) for y in answer.tolist()]
    if answer.empty or answer.shape[1] == 0:
        return [(None, None)] * len(xs)
    labels = [_plain(label) for label in answer.columns]
    best = answer.to_numpy().argmax(axis=1)
    names = [str(label) for label in labels]
    return [
        (labels[b], dict(zip(names, map(float, row), strict=True)))
        for b, row in zip(best, answer.to_numpy().tolist(), strict=True)
    ]


def diverged(answer: Scored) -> str | None:
    """Why ``answer`` is no answer to serve (a NaN or an infinity, which a model whose weights
    or variances overflowed gives for every event from then on), or None when it is one."""
    prediction, proba = answer
    if isinstance(prediction, float) and not math.isfinite(prediction):
        return f"it answered {prediction!r}: it has diverged"
    if proba is not None and not math.isfinite(total := sum(proba.values())):
        return f"its probabilities add up to {total!r}: it has diverged"
    return None


def label_problem(label: Any, task: str, classes: Collection[Any] | None = None) -> str | None:
    """Why ``label`` cannot be a label for ``task``, or None when it can; ``classes``, when
    given, are the only class labels accepted (``StreamConfig.label_classes``). 1 and True are
    one class label, as River sees them."""
    kind = type(label).__name__
    if task == "regression":
        if isinstance(label, bool) or not isinstance(label, int | float):
            return f"label {shown(label)} ({kind}) is not a number, as a regression stream needs"
        if isinstance(label, int) and label.bit_length() > 1023:
            return f"label {shown(label)} is beyond the floats' range"
        if label != label or label in (float("inf"), float("-inf")):
            return f"label {label!r} is not a finite number"
        if not -LARGEST <= label <= LARGEST:
            return (
                f"label {shown(label)} is beyond +-{LARGEST:g}: a model's running variances "
                "overflow on it and it would answer NaN from then on; scale the target"
            )
        return None
    if isinstance(label, float) or not isinstance(label, bool | int | str):
        return f"label {shown(label)} ({kind}) is not a class label: use a bool, an int or a string"
    if classes is not None and label not in classes:
        listed = ", ".join(sorted(map(repr, classes))[:20])
        return f"label {shown(label)} is not one of the stream's classes: {listed}"
    return None


def prediction_problem(prediction: Prediction, stream: StreamConfig) -> str | None:
    """Why a prediction read from ``S.predictions`` cannot count in any metric, or None."""
    if prediction.version < 1:
        return f"prediction version {prediction.version} is not a version (1 or more)"
    if prediction.prediction is not None:
        problem = label_problem(prediction.prediction, stream.task, stream.label_classes)
        if problem is not None:
            return f"prediction {problem.removeprefix('label ')}"
    probabilities = prediction.probabilities or {}
    if not all(0.0 <= p <= 1.0 for p in probabilities.values()):  # NaN fails too
        return "probabilities must be numbers from 0 to 1"
    return None


def _complete(xs: Sequence[Mapping[str, Any]]) -> bool:
    keys = xs[0].keys()
    return all(x.keys() == keys for x in xs)


def _plain(value: Any) -> Any:
    # numpy scalars out of *_many are not JSON types.
    return value.item() if hasattr(value, "item") else value
