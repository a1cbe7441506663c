"""A configuration's models tried before anything runs: each builds, fits its stream's task,
and learns and answers one event of its stream's features.

Settings hold model specs as text, and nothing else reads them before a learner does: a spec
that names no River estimator, a regressor for a binary stream, or a pipeline whose scaler is
handed a categorical feature was accepted by ``meander config check``, and the learner then
failed every step (or dead-lettered every label) for as long as it ran. :func:`check_models`
refuses them at start, naming the key.

>>> from meander.config import Settings
>>> settings = Settings(streams=[{"name": "shop", "task": "binary",
...     "features": {"amount": "numeric", "country": "categorical"},
...     "model": "preprocessing.StandardScaler | linear_model.LogisticRegression"}])
>>> check_models(settings)
Traceback (most recent call last):
...
meander.exceptions.ConfigError: streams.0.model: cannot learn an event of the stream's ...
"""

from __future__ import annotations

from typing import Any

from meander.config import Feature, Settings, StreamConfig
from meander.exceptions import ConfigError, SpecError
from meander.models.specs import build_detector, build_model, check_task

__all__ = ["check_models"]


def check_models(settings: Settings) -> None:
    """Raise ConfigError naming the first key whose model or detector cannot serve its stream."""
    for index, stream in enumerate(settings.streams):
        where = f"streams.{index}"
        _check_model(f"{where}.model", stream.model, stream)
        for number, spec in enumerate(stream.candidates):
            _check_model(f"{where}.candidates.{number}", spec, stream)
        for key in ("concept_detector", "data_detector"):
            try:
                build_detector(getattr(stream.drift, key))
            except SpecError as error:
                raise ConfigError(f"{where}.drift.{key}: {error}") from None


def _check_model(key: str, spec: str, stream: StreamConfig) -> None:
    try:
        model = build_model(spec)
        check_task(model, stream.task)
    except SpecError as error:
        raise ConfigError(f"{key}: {error}") from None
    x = {name: _value(feature) for name, feature in stream.features.items()}
    label = _label(stream)
    trial: Any = model  # a classifier or a regressor: check_task said which
    try:
        trial.learn_one(x, label)
        trial.predict_one(x)
    except Exception as error:  # any failure of the model is the spec's
        kinds = ", ".join(f"{n}: {f.type}" for n, f in stream.features.items())
        raise ConfigError(
            f"{key}: cannot learn an event of the stream's features ({kinds}) and label "
            f"{label!r}: {type(error).__name__}: {error}; a numeric step (a scaler, a linear "
            "model) needs numbers: select the numeric features for it (compose.Select) and "
            "one-hot encode the categorical ones; a binary linear_model.LogisticRegression "
            "learns False and True only (wrap it in multiclass.OneVsRestClassifier for other "
            "labels); or leave the model out for the default that does"
        ) from None
    _check_lacking(key, trial, x, stream)


def _check_lacking(key: str, trial: Any, x: dict[str, Any], stream: StreamConfig) -> None:
    """The model answers an event without its optional features, as the schema lets in."""
    optional = [name for name, feature in stream.features.items() if not feature.required]
    if not optional:
        return
    try:
        trial.predict_one({name: value for name, value in x.items() if name not in optional})
    except Exception as error:
        raise ConfigError(
            f"{key}: cannot answer an event without its optional features "
            f"({', '.join(optional)}): {type(error).__name__}: {error}; compose.Select raises on "
            "a missing feature: leave the other features out with compose.Discard instead"
        ) from None


def _value(feature: Feature) -> Any:
    if feature.type == "numeric":
        return feature.minimum if feature.minimum is not None else 0.0
    if feature.type == "categorical":
        return feature.categories[0] if feature.categories else "a"
    return True


def _label(stream: StreamConfig) -> Any:
    if stream.task == "regression":
        return 0.0
    if stream.classes:
        return stream.classes[0]
    return True if stream.task == "binary" else "a"
