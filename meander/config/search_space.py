"""The models meander tries when nobody said which: a first champion and a search space.

Both are specs (text), chosen by the stream's task and built from its schema, so that a linear
model scales the numeric features and one-hot encodes the categorical ones instead of failing on
text. The search space was chosen by measurement on the tuning half of the adaptation benchmark
(``python -m benchmarks --only adaptation``); the other half checks it.

>>> print(default_model("binary", {"amount": "numeric", "country": "categorical"}))
... # doctest: +NORMALIZE_WHITESPACE
(compose.Select('amount') | preprocessing.StandardScaler)
+ (compose.Select('country') | preprocessing.OneHotEncoder(drop_zeros=True))
| linear_model.LogisticRegression
>>> print(default_model("regression", {"x": "numeric"}))
... # doctest: +NORMALIZE_WHITESPACE
preprocessing.TargetStandardScaler(regressor=preprocessing.StandardScaler
| linear_model.LinearRegression)
>>> len(default_candidates("multiclass", {"x": "numeric"}))
4
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["default_candidates", "default_model", "linear_model", "neighbours"]

_NEIGHBOURS = {
    "binary": "neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=300))",
    "multiclass": "neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=300))",
    "regression": "neighbors.KNNRegressor(engine=neighbors.LazySearch(window_size=300))",
}
_LINEAR = {
    "binary": "linear_model.LogisticRegression",
    "multiclass": "multiclass.OneVsRestClassifier(linear_model.LogisticRegression)",
    "regression": "linear_model.LinearRegression",
}
_TREES = {
    "binary": [
        "tree.HoeffdingTreeClassifier(grace_period=20, delta=0.01)",
        "tree.HoeffdingAdaptiveTreeClassifier(grace_period=20, delta=0.01, seed=42)",
    ],
    "multiclass": [
        "tree.HoeffdingTreeClassifier(grace_period=20, delta=0.01)",
        "tree.HoeffdingAdaptiveTreeClassifier(grace_period=20, delta=0.01, seed=42)",
    ],
    "regression": [
        "tree.HoeffdingTreeRegressor(grace_period=50{leaves})",
        "tree.HoeffdingAdaptiveTreeRegressor(grace_period=50{leaves}, seed=42)",
    ],
}


def linear_model(task: str, features: Mapping[str, str]) -> str:
    """A linear model for ``task`` that scales numbers and one-hot encodes categories; for
    regression, it also learns the target's scale (a target far from 0, an approval rating
    near 40, would otherwise take hundreds of labels to reach from the first prediction of 0)."""
    scaled = _scaled(_LINEAR[task], features)
    if task == "regression":
        return f"preprocessing.TargetStandardScaler(regressor={scaled})"
    return scaled


def neighbours(task: str, features: Mapping[str, str]) -> str:
    """Nearest neighbours among the latest 300 events, on scaled and one-hot features."""
    return _scaled(_NEIGHBOURS[task], features)


def _scaled(head: str, features: Mapping[str, str]) -> str:
    numeric = [name for name, kind in features.items() if kind != "categorical"]
    categorical = [name for name, kind in features.items() if kind == "categorical"]
    if not categorical:
        return f"preprocessing.StandardScaler | {head}"
    # Only the categories present: a distance or a dot product over the absent ones (zeros) adds
    # nothing but time. Nearest neighbours answered the same at a quarter of the cost on Agrawal
    # (597 -> 162 us a prediction over 300 events: every category seen, against the 3 present).
    parts = [
        f"(compose.Select({_names(categorical)}) | preprocessing.OneHotEncoder(drop_zeros=True))"
    ]
    if numeric:
        parts.insert(0, f"(compose.Select({_names(numeric)}) | preprocessing.StandardScaler)")
    return f"{' + '.join(parts)} | {head}"


def default_model(task: str, features: Mapping[str, str]) -> str:
    """The first champion of a stream with no model configured: a linear model, which learns
    from its first labels on and costs little, while the search space races it."""
    return linear_model(task, features)


def default_candidates(task: str, features: Mapping[str, str]) -> list[str]:
    """The search space of a stream with no candidates configured."""
    trees = [spec.format(leaves=_leaves(features)) for spec in _TREES[task]]
    return [*trees, linear_model(task, features), neighbours(task, features)]


def _leaves(features: Mapping[str, str]) -> str:
    """A regression tree's leaf models are linear regressions, which take numbers only."""
    numeric = [name for name, kind in features.items() if kind != "categorical"]
    if len(numeric) == len(features):
        return ""
    if not numeric:
        return ", leaf_prediction='mean'"
    return f", leaf_model=compose.Select({_names(numeric)}) | linear_model.LinearRegression"


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)
