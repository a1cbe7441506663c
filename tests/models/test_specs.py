"""Model specs: one contract over many specs, and a refusal for every unsafe or invalid form."""

from __future__ import annotations

import builtins
import importlib
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from river import base, tree

from meander.config.search_space import default_candidates, default_model
from meander.exceptions import ConfigError, SpecError
from meander.models.specs import build_detector, build_model, check_task, spec_text

Samples = Callable[..., list[tuple[dict[str, float], Any]]]

BAGGING = (
    "ensemble.BaggingClassifier(model=tree.HoeffdingTreeClassifier(grace_period=50), "
    "n_models=3, seed=1)"
)
STRUCTURED_PIPELINE = {
    "steps": [
        {"class": "preprocessing.StandardScaler"},
        {"class": "linear_model.LogisticRegression", "params": {"l2": 0.01}},
    ]
}
STRUCTURED_NESTED = {
    "class": "ensemble.BaggingClassifier",
    "params": {
        "model": {"class": "tree.HoeffdingTreeClassifier", "params": {"grace_period": 50}},
        "n_models": 3,
        "seed": 1,
    },
}

TASKS = ("binary", "multiclass", "regression")
SPECS: list[tuple[str, str | Mapping[str, Any]]] = [
    *((task, default_model(task, {"x": "numeric"})) for task in TASKS),
    *((task, spec) for task in TASKS for spec in default_candidates(task, {"x": "numeric"})),
    ("multiclass", "tree.HoeffdingTreeClassifier"),
    ("multiclass", "tree.HoeffdingAdaptiveTreeClassifier(seed=1)"),
    ("multiclass", "forest.ARFClassifier(n_models=3, seed=1)"),
    ("multiclass", BAGGING),
    ("binary", "river.tree.HoeffdingTreeClassifier(splitter=tree.splitter.GaussianSplitter())"),
    (
        "regression",
        "preprocessing.StandardScaler + preprocessing.MinMaxScaler | "
        "linear_model.LinearRegression(l2=0.001, intercept_lr=0.05)",
    ),
    ("regression", "compose.Select('a', 'b') | tree.HoeffdingTreeRegressor(grace_period=50)"),
    ("binary", STRUCTURED_PIPELINE),
    ("multiclass", STRUCTURED_NESTED),
    ("multiclass", "multiclass.OneVsRestClassifier(classifier=linear_model.LogisticRegression())"),
]


def _id(spec: str | Mapping[str, Any]) -> str:
    return spec_text(spec)[:60]


@pytest.fixture(params=SPECS, ids=[_id(spec) for _, spec in SPECS])
def case(request: pytest.FixtureRequest) -> tuple[str, str | Mapping[str, Any]]:
    return request.param  # type: ignore[no-any-return]


def test_builds_an_estimator_for_its_task(case: tuple[str, Any]) -> None:
    task, spec = case
    model = build_model(spec)
    assert isinstance(model, base.Estimator)
    check_task(model, task)  # type: ignore[arg-type]


def test_clone_is_fresh_with_the_same_parameters(
    case: tuple[str, Any], make_samples: Samples
) -> None:
    task, spec = case
    model = build_model(spec)
    assert model.clone()._get_params() == model._get_params()
    data = make_samples(task, 100)
    for x, y in data:
        model.learn_one(x, y)
    clone = model.clone()
    assert clone is not model
    # A clone has learned nothing: it predicts as a model fresh from the spec does.
    assert clone.predict_one(data[0][0]) == build_model(spec).predict_one(data[0][0])


def test_learns_and_predicts_after_a_pickle_round_trip(
    case: tuple[str, Any], make_samples: Samples
) -> None:
    task, spec = case
    data = make_samples(task, 300)
    model = build_model(spec)
    for x, y in data[:200]:
        model.learn_one(x, y)
    restored = pickle.loads(pickle.dumps(model))
    for x, _ in data[200:220]:
        assert restored.predict_one(x) == model.predict_one(x)
    for x, y in data[220:]:
        restored.learn_one(x, y)
    prediction = restored.predict_one(data[0][0])
    if task == "regression":
        assert isinstance(prediction, float)
    else:
        assert prediction in {y for _, y in data}


def test_canonical_text_builds_the_same_model(case: tuple[str, Any]) -> None:
    _, spec = case
    text = spec_text(spec)
    assert "\n" not in text
    assert spec_text(text) == text
    assert build_model(text)._get_params() == build_model(spec)._get_params()


def test_canonical_text_is_shared_by_equivalent_forms() -> None:
    assert spec_text(STRUCTURED_PIPELINE) == (
        "preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.01)"
    )
    assert spec_text(STRUCTURED_NESTED) == BAGGING
    assert spec_text("river.tree.HoeffdingTreeClassifier( )") == "tree.HoeffdingTreeClassifier"
    assert spec_text("a.B(x=-1.5, y=[1, (2,)], z={'k': None})") == (
        "a.B(x=-1.5, y=[1, (2,)], z={'k': None})"
    )


def test_arguments_reach_the_constructor() -> None:
    model = build_model(BAGGING)
    assert model.n_models == 3
    assert isinstance(model.model, tree.HoeffdingTreeClassifier)
    assert model.model.grace_period == 50
    pipeline = build_model("preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.5)")
    assert pipeline["LogisticRegression"].l2 == 0.5


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("drift.ADWIN", "ADWIN"),
        ("drift.ADWIN(delta=0.001)", "ADWIN"),
        ("drift.PageHinkley(threshold=20)", "PageHinkley"),
        ("drift.binary.DDM", "DDM"),
        ({"class": "drift.KSWIN", "params": {"seed": 1}}, "KSWIN"),
    ],
)
def test_detectors(spec: Any, kind: str) -> None:
    detector = build_detector(spec)
    assert type(detector).__name__ == kind
    for i in range(100):
        detector.update(i % 2 if kind == "DDM" else float(i % 7))
    restored = pickle.loads(pickle.dumps(detector))
    restored.update(0 if kind == "DDM" else 1.0)
    assert restored.drift_detected in (True, False)


def test_detector_arguments_reach_the_constructor() -> None:
    assert build_detector("drift.ADWIN(delta=0.001)").delta == 0.001


REFUSED = [
    ("__import__('os')", "'__import__' starts with '_'"),
    ("os.system('x')", "'os' is not a River module"),
    ("numpy.array", "names from other packages are not allowed"),
    ("tree.HoeffdingTreeClassifier.__init__", "'__init__' starts with '_'"),
    ("tree.HoeffdingTreeClassifier.clone", "attribute access on it"),
    ("tree._base.Leaf", "'_base' starts with '_'"),
    ("lambda: tree.HoeffdingTreeClassifier()", "a lambda is not a model spec"),
    ("[tree.HoeffdingTreeClassifier() for _ in 'ab']", "a comprehension is not a model spec"),
    ("tree.HoeffdingTreeClassifier()()", "a call result cannot start a class path"),
    ("tree.NoSuchTree", "River has no 'tree.NoSuchTree'"),
    ("tree.HoeffdingTreeClassifier(depth=3)", "unexpected keyword argument 'depth'"),
    ("tree.HoeffdingTreeClassifier(grace_period=", "not valid syntax"),
    ("tree.HoeffdingTreeClassifier(grace_period=open('/etc/passwd'))", "'open' is not a River"),
    ("tree.HoeffdingTreeClassifier(**{'grace_period': 1})", "**arguments are not allowed"),
    ("tree.HoeffdingTreeClassifier(*[1])", "*arguments are not allowed"),
    ("tree.HoeffdingTreeClassifier(grace_period=2**8)", "a BinOp expression"),
    ("tree.HoeffdingTreeClassifier(grace_period=b'x')", "bytes literal"),
    ("tree.HoeffdingTreeClassifier(grace_period=x)", "'x' is not a River module"),
    ("utils.math.dot", "utils.math.dot is not a class"),
    ("utils.Rolling", "Rolling is not a River estimator class"),
    ("datasets.Phishing", "Phishing is not a River estimator class"),
    ("tree", "tree is not a class"),
    ("1 | 2", "a literal is not a model spec"),
    ("tree.HoeffdingTreeClassifier - tree.HoeffdingTreeClassifier", "a BinOp expression"),
    ("linear_model.LinearRegression + linear_model.LogisticRegression", "cannot form a union"),
    (
        "tree.HoeffdingTreeRegressor(splitter=tree.splitter.QOSplitter(radius=0))",
        "QOSplitter refused its arguments: 'radius' must be greater than zero",
    ),
    ("drift.ADWIN", "not an estimator"),
    ("", "non-empty string"),
    ({"class": "os.system('x')"}, "dotted River class path"),
    ({"class": "tree.HoeffdingTreeClassifier", "params": {"x=1) | os.system('y'": 1}}, "invalid"),
    ({"class": "tree.HoeffdingTreeClassifier", "oops": 1}, "a structured spec has 'class'"),
    ({"steps": []}, "non-empty list"),
    ({"class": "tree.HoeffdingTreeClassifier", "params": {"delta": float("nan")}}, "finite"),
]


@pytest.mark.parametrize(("spec", "why"), REFUSED, ids=[str(s)[:50] for s, _ in REFUSED])
def test_refused(spec: Any, why: str) -> None:
    with pytest.raises(SpecError) as refused:
        build_model(spec)
    message = str(refused.value)
    assert why in message
    if isinstance(spec, str) and spec and "not an estimator" not in why:
        assert repr(spec)[:40] in message or spec[:30] in message  # quotes the spec
    assert isinstance(refused.value, ConfigError)


def test_refusal_says_what_is_allowed() -> None:
    with pytest.raises(SpecError, match=r"relative to `river`.*`\|` \(pipeline\)"):
        build_model("os.system('rm -rf /')")


def test_refused_spec_has_no_side_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    real_import, real_import_module = builtins.__import__, importlib.import_module
    loaded_before = set(sys.modules)

    def recording_import(name: str, *args: Any, **kwargs: Any) -> Any:
        imported.append(name)
        return real_import(name, *args, **kwargs)

    def recording_import_module(name: str, package: str | None = None) -> Any:
        imported.append(name)
        return real_import_module(name, package)

    constructed: list[str] = []
    real_init = tree.HoeffdingTreeClassifier.__init__

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        constructed.append(type(self).__name__)
        real_init(self, *args, **kwargs)

    def forbidden(*args: Any) -> None:
        raise AssertionError("a spec ran a shell command")

    monkeypatch.setattr(builtins, "__import__", recording_import)
    monkeypatch.setattr(importlib, "import_module", recording_import_module)
    monkeypatch.setattr(tree.HoeffdingTreeClassifier, "__init__", recording_init)
    monkeypatch.setattr(os, "system", forbidden)
    for spec in [
        "__import__('os').system('x')",
        "os.system('x')",
        "subprocess.Popen('x')",
        "tree.HoeffdingTreeClassifier() | os.system('x')",
        "ensemble.BaggingClassifier(model=tree.HoeffdingTreeClassifier(), nope=1)",
        "tree.HoeffdingTreeClassifier(grace_period=tree.HoeffdingTreeClassifier.clone)",
    ]:
        with pytest.raises(SpecError):
            build_model(spec)
    assert constructed == []  # every check runs before the first constructor
    assert not {"os", "subprocess"} & {name.split(".")[0] for name in imported}
    newly_loaded = set(sys.modules) - loaded_before
    assert {name for name in newly_loaded if not name.startswith("river.")} == set()


@pytest.mark.parametrize(
    ("spec", "task", "why"),
    [
        ("linear_model.LinearRegression", "binary", "not a classifier"),
        ("preprocessing.StandardScaler | linear_model.LinearRegression", "multiclass", "not a"),
        ("tree.HoeffdingTreeClassifier", "regression", "not a regressor"),
        ("linear_model.LogisticRegression", "multiclass", "OneVsRestClassifier"),
        ("preprocessing.StandardScaler", "binary", "not a classifier"),
    ],
)
def test_check_task_refuses_a_model_of_another_task(spec: str, task: Any, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        check_task(build_model(spec), task)


def test_build_detector_refuses_a_model() -> None:
    with pytest.raises(SpecError, match="not a drift detector"):
        build_detector("linear_model.LogisticRegression")
