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

from collections.abc import Collection, Mapping

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
# The adaptive tree's leaves answer with their majority class. With River's default (naive
# Bayes where it does better) the loop took 6-19 % more CPU an event on four benchmark streams,
# and served 0.8009 where this serves 0.8024 over the 17 classification streams (better on
# three, stagger_recurring 0.012 worse, the same on the rest).
_ADAPTIVE_TREE = (
    "tree.HoeffdingAdaptiveTreeClassifier(grace_period=20, delta=0.01, leaf_prediction='mc', "
    "seed=42)"
)
_TREES = {
    "binary": ["tree.HoeffdingTreeClassifier(grace_period=20, delta=0.01)", _ADAPTIVE_TREE],
    "multiclass": ["tree.HoeffdingTreeClassifier(grace_period=20, delta=0.01)", _ADAPTIVE_TREE],
    "regression": [
        "tree.HoeffdingTreeRegressor(grace_period=50{leaves})",
        "tree.HoeffdingAdaptiveTreeRegressor(grace_period=50{leaves}, seed=42)",
    ],
}


def linear_model(task: str, features: Mapping[str, str], optional: Collection[str] = ()) -> str:
    """A linear model for ``task`` that scales numbers and one-hot encodes categories; for
    regression, it also learns the target's scale (a target far from 0, an approval rating
    near 40, would otherwise take hundreds of labels to reach from the first prediction of 0).
    ``optional`` names the features an event may lack."""
    scaled = _scaled(_LINEAR[task], features, optional)
    if task == "regression":
        return f"preprocessing.TargetStandardScaler(regressor={scaled})"
    return scaled


def neighbours(task: str, features: Mapping[str, str], optional: Collection[str] = ()) -> str:
    """Nearest neighbours among the latest 300 events, on scaled and one-hot features."""
    return _scaled(_NEIGHBOURS[task], features, optional)


def _scaled(head: str, features: Mapping[str, str], optional: Collection[str]) -> str:
    numeric = [name for name, kind in features.items() if kind != "categorical"]
    categorical = [name for name, kind in features.items() if kind == "categorical"]
    if not categorical:
        return f"preprocessing.StandardScaler | {head}"
    # Only the categories present: a distance or a dot product over the absent ones (zeros) adds
    # nothing but time. Nearest neighbours answered the same at a quarter of the cost on Agrawal
    # (597 -> 162 us a prediction over 300 events: every category seen, against the 3 present).
    one_hot = _only(categorical, numeric, optional)
    parts = [f"({one_hot} | preprocessing.OneHotEncoder(drop_zeros=True))"]
    if numeric:
        parts.insert(0, f"({_only(numeric, categorical, optional)} | preprocessing.StandardScaler)")
    return f"{' + '.join(parts)} | {head}"


def _only(names: list[str], others: list[str], optional: Collection[str]) -> str:
    """A step that passes ``names`` on. ``compose.Select`` raises KeyError on an event that
    lacks one of them (and the event would be dead-lettered, its label not learned), so a group
    holding an optional feature leaves the others out instead (``compose.Discard``), which
    scores a batch one event at a time."""
    if any(name in optional for name in names):
        return f"compose.Discard({_names(others)})"
    return f"compose.Select({_names(names)})"


def default_model(task: str, features: Mapping[str, str], optional: Collection[str] = ()) -> str:
    """The first champion of a stream with no model configured: a linear model, which learns
    from its first labels on and costs little, while the search space races it."""
    return linear_model(task, features, optional)


def default_candidates(
    task: str, features: Mapping[str, str], optional: Collection[str] = ()
) -> list[str]:
    """The search space of a stream with no candidates configured."""
    trees = [spec.format(leaves=_leaves(features, optional)) for spec in _TREES[task]]
    return [*trees, linear_model(task, features, optional), neighbours(task, features, optional)]


def _leaves(features: Mapping[str, str], optional: Collection[str]) -> str:
    """A regression tree's leaf models are linear regressions, which take numbers: categories
    reach them one-hot encoded."""
    numeric = [name for name, kind in features.items() if kind != "categorical"]
    if len(numeric) == len(features):
        return ""
    categorical = [name for name in features if name not in numeric]
    one_hot = (
        f"({_only(categorical, numeric, optional)} | preprocessing.OneHotEncoder(drop_zeros=True))"
    )
    leaf = f"{_only(numeric, categorical, optional)} + {one_hot}" if numeric else one_hot
    return f", leaf_model={leaf} | linear_model.LinearRegression"


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)
