"""The lean pickle: models lose only unseeded random states, and predict and learn as before."""

from __future__ import annotations

import gc
import pickle
import random

import pytest
from river import datasets, forest, proba, tree

from meander.models.blobs import dumps, loads


def _trained(model: object, events: int = 1_000) -> object:
    for x, y in datasets.synth.Agrawal(seed=1).take(events):
        model.learn_one(x, y)  # type: ignore[attr-defined]
    return model


@pytest.mark.parametrize(
    "make",
    [
        lambda: tree.HoeffdingTreeClassifier(grace_period=50),
        lambda: tree.HoeffdingAdaptiveTreeClassifier(grace_period=50, seed=1),
        lambda: forest.ARFClassifier(n_models=3, seed=1),
    ],
    ids=["ht", "hat", "arf3"],
)
def test_a_restored_model_predicts_and_learns_as_the_original(make: object) -> None:
    model = _trained(make())  # type: ignore[operator]
    lean = dumps(model)
    assert len(lean) < len(pickle.dumps(model)) / 3
    twin = pickle.loads(lean)
    rest = list(datasets.synth.Agrawal(seed=2).take(300))
    for x, y in rest:
        assert twin.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y)
        twin.learn_one(x, y)


def test_a_load_runs_no_collection_and_leaves_the_collector_as_it_was() -> None:
    model = _trained(forest.ARFClassifier(n_models=3, seed=1))
    blob = dumps(model)
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    # The collector's own defaults, whatever an earlier test in this process left (a Loop, or a
    # component run in process, collects the youngest generation far less often).
    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.collect()  # counts start at zero
    gc.callbacks.append(count)
    try:
        twin = loads(blob)
        assert collections in ([], [0]) and gc.isenabled()  # [0]: the one when it resumes
        gc.disable()
        try:
            loads(blob)
            assert not gc.isenabled()  # a caller's choice is kept
        finally:
            gc.enable()
        collections.clear()
        pickle.loads(blob)
        assert len(collections) > 3, collections  # unpaused, the same load collects again and again
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
    x, _ = next(iter(datasets.synth.Agrawal(seed=2).take(1)))
    assert twin.predict_proba_one(x) == model.predict_proba_one(x)  # type: ignore[attr-defined]


def test_a_seeded_gaussian_keeps_its_generator() -> None:
    gaussian = proba.Gaussian(seed=7)
    for value in (1.0, 2.0, 4.0):
        gaussian.update(value)
    twin = pickle.loads(dumps(gaussian))
    assert [twin.sample() for _ in range(3)] == [gaussian.sample() for _ in range(3)]


def test_an_unseeded_gaussian_gets_a_working_generator() -> None:
    gaussian = proba.Gaussian()
    for value in (1.0, 2.0, 4.0):
        gaussian.update(value)
    twin = pickle.loads(dumps(gaussian))
    assert isinstance(twin._rng, random.Random)
    assert (twin.mu, twin.sigma) == (gaussian.mu, gaussian.sigma)
    assert isinstance(twin.sample(), float)


def test_a_regression_tree_over_a_feature_that_only_grows_is_written_and_restored() -> None:
    # A date or a counter: a leaf's E-BST of split candidates is a chain of the values it saw
    # (about 1,250 long here; plain pickle's recursion gave up at a few hundred).
    noise = random.Random(0)
    stream = []
    for day in range(3_000):
        x = {"day": float(day), "x": noise.random()}
        stream.append((x, 40 + day / 100 + noise.gauss(0, 1)))
    model = tree.HoeffdingTreeRegressor(grace_period=50)
    for x, y in stream[:2_000]:
        model.learn_one(x, y)
    twin = pickle.loads(dumps(model))
    for x, y in stream[2_000:]:
        assert twin.predict_one(x) == model.predict_one(x)
        model.learn_one(x, y)
        twin.learn_one(x, y)
