"""The adaptive tree of the search space: River's answers, with leaves spared needless work."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from river import tree
from river.tree.nodes.hatc_nodes import AdaLeafClassifier

from meander.models.blobs import dumps
from meander.models.specs import build_model
from meander.models.trees import AdaptiveLeaf, HoeffdingAdaptiveTreeClassifier, accelerate, as_river

Stream = list[tuple[dict[str, Any], str]]


def _stream(seed: int, n: int = 1_500) -> Stream:
    """Three classes whose rule flips halfway: the trees split, drift, and grow alternates."""
    rng = random.Random(seed)
    events: Stream = []
    for i in range(n):
        x = {"a": rng.random(), "b": rng.random(), "c": rng.choice([0, 1, 2])}
        score = x["a"] + 0.5 * x["c"] if i < n // 2 else x["b"] - 0.5 * x["c"]
        y = "low" if score < 0.3 else "mid" if score < 0.9 else "high"
        events.append((x, y if rng.random() > 0.1 else rng.choice(["low", "mid", "high"])))
    return events


def _river_and_ours(leaves: str) -> tuple[Any, Any]:
    spec = (
        f"tree.HoeffdingAdaptiveTreeClassifier(grace_period=20, leaf_prediction={leaves!r}, seed=7)"
    )
    river = tree.HoeffdingAdaptiveTreeClassifier(grace_period=20, leaf_prediction=leaves, seed=7)
    return river, build_model(spec)


@pytest.mark.parametrize("leaves", ["mc", "nba"])
def test_the_same_answers_as_rivers_tree_to_the_bit(leaves: str) -> None:
    river, ours = _river_and_ours(leaves)
    assert type(ours) is HoeffdingAdaptiveTreeClassifier
    for x, y in _stream(seed=1):
        assert ours.predict_proba_one(x) == river.predict_proba_one(x)
        ours.learn_one(x, y)
        river.learn_one(x, y)
    assert ours.n_nodes == river.n_nodes and ours._n_alternate_trees == river._n_alternate_trees
    assert ours._n_alternate_trees > 0  # the stream made it adapt: alternates were compared too
    assert all(type(leaf) is AdaptiveLeaf for leaf in ours._root.iter_leaves())


def test_a_pickled_tree_learns_on_as_before_and_exports_as_rivers() -> None:
    river, ours = _river_and_ours("mc")
    events = _stream(seed=2)
    for x, y in events[:900]:
        ours.learn_one(x, y)
        river.learn_one(x, y)
    # Both restored: River's tree keeps its classes in a set, which a restored copy may
    # iterate in another order (string hashes vary by process), summing the shares in it.
    copy, river = pickle.loads(dumps(ours)), pickle.loads(dumps(river))
    assert type(copy) is HoeffdingAdaptiveTreeClassifier
    for x, y in events[900:]:
        assert copy.predict_proba_one(x) == river.predict_proba_one(x)
        copy.learn_one(x, y)
        river.learn_one(x, y)
    exported = as_river(copy)
    assert type(exported) is tree.HoeffdingAdaptiveTreeClassifier
    assert b"meander" not in pickle.dumps(exported)
    assert all(type(leaf) is AdaLeafClassifier for leaf in exported._root.iter_leaves())


def test_only_a_tree_that_learned_nothing_is_swapped() -> None:
    learned = tree.HoeffdingAdaptiveTreeClassifier()
    learned.learn_one({"a": 1.0}, True)
    assert type(accelerate(learned)) is tree.HoeffdingAdaptiveTreeClassifier
    assert type(accelerate(tree.HoeffdingTreeClassifier())) is tree.HoeffdingTreeClassifier
    assert type(accelerate(tree.HoeffdingAdaptiveTreeClassifier()).clone()) is (
        HoeffdingAdaptiveTreeClassifier
    )
