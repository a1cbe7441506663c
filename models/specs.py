"""Model and detector specs: River objects built from text or TOML, never with eval.

A spec names River classes relative to ``river`` and joins them the way River does: ``|`` makes
a pipeline, ``+`` a transformer union. Arguments are literals or nested specs. Every name is
resolved inside ``river`` and must be a :class:`river.base.Base` subclass; every argument is
checked against the class signature before anything is constructed, so a refused spec leaves no
trace.

>>> model = build_model("preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.01)")
>>> model["LogisticRegression"].l2
0.01
>>> build_model({"class": "tree.HoeffdingTreeClassifier", "params": {"grace_period": 50}})
HoeffdingTreeClassifier (
  grace_period=50
  ...
>>> build_detector("drift.ADWIN(delta=0.001)").delta
0.001
>>> spec_text("river.tree.HoeffdingTreeClassifier()")
'tree.HoeffdingTreeClassifier'
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Literal

import river
from river import base

from meander.exceptions import SpecError
from meander.models import neighbours, trees
from meander.models.spec_syntax import Call, Compose, Container, Value, from_mapping, parse, refuse
from meander.models.spec_syntax import render as _render

__all__ = ["Detector", "build_detector", "build_model", "check_task", "spec_text"]

Detector = base.DriftDetector | base.BinaryDriftDetector
Spec = str | Mapping[str, Any]


def build_model(spec: Spec) -> base.Estimator:
    """A fresh River estimator from a spec string or a structured (TOML) spec.

    Raises SpecError, quoting the offending fragment, for anything that is not an allowed River
    class, argument or composition.

    >>> build_model({"steps": ["preprocessing.StandardScaler", "linear_model.LinearRegression"]})
    Pipeline (
      StandardScaler (
    ...
    """
    text, built = _build(spec)
    if not isinstance(built, base.Estimator):
        use = " (use it as a drift detector setting)" if isinstance(built, Detector) else ""
        raise SpecError(
            f"model spec {text!r} builds {type(built).__name__}, which is not an estimator"
            f"{use}; name a River classifier, regressor or pipeline"
        )
    # The same model, with a k-NN's search over its window done on a matrix and an adaptive
    # tree's leaves spared work they have no use for (the same answers).
    return trees.accelerate(neighbours.accelerate(built))


def build_detector(spec: Spec) -> Detector:
    """A fresh River drift detector, such as ``drift.ADWIN`` or ``drift.binary.DDM``.

    >>> type(build_detector("drift.binary.DDM")).__name__
    'DDM'
    """
    text, built = _build(spec)
    if not isinstance(built, Detector):
        raise SpecError(
            f"detector spec {text!r} builds {type(built).__name__}, which is not a drift "
            f"detector; name one from river.drift, such as 'drift.ADWIN(delta=0.002)'"
        )
    return built


def check_task(model: base.Estimator, task: Literal["binary", "multiclass", "regression"]) -> None:
    """Refuse a model that cannot do ``task``: a regressor for classes, or the reverse.

    >>> check_task(build_model("linear_model.LinearRegression"), "binary")
    Traceback (most recent call last):
    ...
    meander.exceptions.SpecError: ...
    """
    name = type(model).__name__
    if task == "regression":
        if not isinstance(model, base.Regressor):
            raise SpecError(
                f"the {name} model is not a regressor, but the stream's task is regression; "
                f"name one such as 'linear_model.LinearRegression' or "
                f"'tree.HoeffdingTreeRegressor'"
            )
        return
    if not isinstance(model, base.Classifier):
        raise SpecError(
            f"the {name} model is not a classifier, but the stream's task is {task}; name one "
            f"such as 'tree.HoeffdingTreeClassifier' or 'linear_model.LogisticRegression'"
        )
    if task == "multiclass" and not getattr(model, "_multiclass", False):
        raise SpecError(
            f"the {name} model only tells two classes apart, but the stream's task is "
            f"multiclass; wrap it, e.g. 'multiclass.OneVsRestClassifier(classifier=...)', or "
            f"name a multiclass model such as 'tree.HoeffdingTreeClassifier'"
        )


def spec_text(spec: Spec) -> str:
    """The canonical one-line text of a spec, the same for the same model whatever its form.

    It checks the grammar only; names are resolved when the spec is built.

    >>> spec_text({"steps": [{"class": "preprocessing.StandardScaler"},
    ...                      {"class": "linear_model.LogisticRegression", "params": {"l2": 0.1}}]})
    'preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.1)'
    """
    return _render(parse(_text(spec)))


def _text(spec: Spec) -> str:
    if isinstance(spec, Mapping):
        return from_mapping(spec)
    return spec


def _build(spec: Spec) -> tuple[str, Any]:
    text = _text(spec)
    tree = parse(text)
    _Checker(text).check(tree)  # every name and argument before any constructor runs
    return text, _construct(text, tree)


class _Checker:
    """Resolves every class of a tree and binds its arguments, constructing nothing."""

    def __init__(self, text: str) -> None:
        self.text = text

    def check(self, node: Value) -> None:
        if isinstance(node, Compose):
            self.check(node.left)
            self.check(node.right)
        elif isinstance(node, Container):
            for item in (*node.keys, *node.items):
                self.check(item)
        elif isinstance(node, Call):
            cls = resolve(self.text, node)
            for arg in (*node.args, *(value for _, value in node.kwargs)):
                self.check(arg)
            try:
                inspect.signature(cls).bind(*node.args, **dict(node.kwargs))
            except TypeError as error:
                accepted = ", ".join(inspect.signature(cls).parameters) or "no arguments"
                raise refuse(
                    self.text, node.fragment, f"{error}; {cls.__name__} accepts: {accepted}"
                ) from None


def resolve(text: str, call: Call) -> type[base.Base]:
    """The River class ``call.path`` names, importing only modules inside ``river``."""
    found: Any = river
    for depth, part in enumerate(call.path):
        if not isinstance(found, ModuleType):
            held = ".".join(call.path[:depth])
            raise refuse(text, call.fragment, f"{held} is not a module: attribute access on it")
        found = _attribute(text, call, found, part)
    if not isinstance(found, type):
        raise refuse(text, call.fragment, f"{'.'.join(call.path)} is not a class")
    if found.__module__.split(".")[0] != "river" or not issubclass(found, base.Base):
        raise refuse(text, call.fragment, f"{found.__qualname__} is not a River estimator class")
    return found


def _attribute(text: str, call: Call, module: ModuleType, part: str) -> Any:
    name = f"{module.__name__}.{part}"
    if hasattr(module, part):
        found = getattr(module, part)
    else:
        try:
            found = importlib.import_module(name)
        except ImportError:
            path = ".".join(call.path)
            if module is river:
                why = f"{part!r} is not a River module; names from other packages are not allowed"
            else:
                why = f"River has no {path!r} ({name} not found)"
            raise refuse(text, call.fragment, why) from None
    if isinstance(found, ModuleType) and not found.__name__.startswith("river."):
        raise refuse(text, call.fragment, f"{name} is {found.__name__}, a module outside River")
    return found


def _construct(text: str, node: Value) -> Any:
    if isinstance(node, Container):
        items = [_construct(text, item) for item in node.items]
        if node.kind == "dict":
            return {_construct(text, k): v for k, v in zip(node.keys, items, strict=True)}
        return tuple(items) if node.kind == "tuple" else items
    if isinstance(node, Compose):
        return _compose(text, node)
    if isinstance(node, Call):
        cls = resolve(text, node)
        args = [_construct(text, arg) for arg in node.args]
        kwargs = {name: _construct(text, value) for name, value in node.kwargs}
        try:
            return cls(*args, **kwargs)
        except Exception as error:  # a River constructor refusing its arguments, of any kind
            raise refuse(
                text, node.fragment, f"{cls.__name__} refused its arguments: {error}"
            ) from error
    return node


def _compose(text: str, node: Compose) -> Any:
    left, right = _construct(text, node.left), _construct(text, node.right)
    for side in (left, right):
        if not isinstance(side, base.Estimator):
            raise refuse(text, node.fragment, f"{type(side).__name__} cannot be part of a pipeline")
    try:
        return left | right if node.operator == "|" else left + right
    except (TypeError, ValueError) as error:
        what = "a pipeline" if node.operator == "|" else "a union (`+` joins transformers)"
        raise refuse(text, node.fragment, f"these cannot form {what}: {error}") from error
