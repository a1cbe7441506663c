"""The models the loop is measured against, each run plainly on the same samples.

Each baseline is scored prequentially, in one of two ways. ``delay`` (the main table): it
predicts a chunk of 100 samples, then learns them, as the loop's labels come back a chunk after
its predictions; the comparison gives every model the same information. Without delay: it
predicts a sample, is scored, then learns it before the next (River's usual way of comparing
models, and the most favourable to them). For classification:
a Hoeffding tree, an adaptive tree, ``ARFClassifier(n_models=10)``, the linear model of the
default search space, River's bandit selector over the search space's models, and River's
``DriftRetrainingClassifier`` around a Hoeffding tree. For regression: the same families, and
River's greedy and bandit selectors.

>>> from benchmarks.adaptation.streams import build
>>> stream = build("sea_abrupt", events=1_000)
>>> result = prequential(BASELINES["binary"]["hoeffding_tree"](stream), stream, delay=100)
>>> 0.6 < result["score"] <= 1.0, result["events"]
(True, 1000)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from river import bandit, drift, forest, metrics, model_selection, tree

from benchmarks.adaptation.streams import BenchStream
from meander.config.search_space import default_candidates, linear_model
from meander.models.specs import build_model

__all__ = ["BASELINES", "prequential"]

Make = Callable[[BenchStream], Any]


def _linear(stream: BenchStream) -> Any:
    return build_model(linear_model(stream.task, stream.features))


def _search_space(stream: BenchStream) -> list[Any]:
    return [build_model(spec) for spec in default_candidates(stream.task, stream.features)]


def _policy() -> bandit.EpsilonGreedy:
    # River's documented settings for its bandit selectors.
    return bandit.EpsilonGreedy(epsilon=0.1, decay=0.001, burn_in=100, seed=42)


CLASSIFIERS: dict[str, Make] = {
    "hoeffding_tree": lambda s: tree.HoeffdingTreeClassifier(),
    "adaptive_tree": lambda s: tree.HoeffdingAdaptiveTreeClassifier(seed=42),
    "arf10": lambda s: forest.ARFClassifier(n_models=10, seed=42),
    "linear": _linear,
    "bandit": lambda s: model_selection.BanditClassifier(
        _search_space(s), metric=metrics.Accuracy(), policy=_policy()
    ),
    "drift_retraining": lambda s: drift.DriftRetrainingClassifier(
        tree.HoeffdingTreeClassifier(), drift.binary.DDM()
    ),
}
REGRESSORS: dict[str, Make] = {
    "hoeffding_tree": lambda s: tree.HoeffdingTreeRegressor(),
    "adaptive_tree": lambda s: tree.HoeffdingAdaptiveTreeRegressor(seed=42),
    "arf10": lambda s: forest.ARFRegressor(n_models=10, seed=42),
    "linear": _linear,
    "greedy": lambda s: model_selection.GreedyRegressor(_search_space(s), metrics.MAE()),
    "bandit": lambda s: model_selection.BanditRegressor(
        _search_space(s), metric=metrics.MAE(), policy=_policy()
    ),
}
BASELINES: dict[str, dict[str, Make]] = {
    "binary": CLASSIFIERS,
    "multiclass": CLASSIFIERS,
    "regression": REGRESSORS,
}


def prequential(model: Any, stream: BenchStream, *, delay: int = 0) -> dict[str, Any]:
    """Test-then-train over the stream: accuracy (MAE for regression) and events per second of
    CPU time (the machine is shared: wall time would measure the neighbours too).

    With ``delay``, the samples go in chunks of that many: all of a chunk is predicted, then
    learned."""
    regression = stream.task == "regression"
    metric = metrics.MAE() if regression else metrics.Accuracy()
    samples = stream.samples
    step = max(delay, 1)
    started = time.process_time()
    for start in range(0, len(samples), step):
        chunk = samples[start : start + step]
        for sample in chunk:
            prediction = model.predict_one(sample.features)
            if regression and prediction is None:
                prediction = 0.0
            metric.update(sample.label, prediction)
        for sample in chunk:
            model.learn_one(sample.features, sample.label)
    seconds = max(time.process_time() - started, 1e-9)
    return {
        "score": round(metric.get(), 4),
        "events": len(samples),
        "events_per_second": round(len(samples) / seconds),
    }
