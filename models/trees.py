"""The Hoeffding adaptive tree of the search space, the answers of River's, for less work.

River's ``tree.HoeffdingAdaptiveTreeClassifier`` spends most of an event on two things a tree
whose leaves answer with their majority class (``leaf_prediction='mc'``, as in the default
search space) has no use for. Each leaf scores naive Bayes against the majority class on every
event it learns, to choose between them, a choice only ``leaf_prediction='nba'`` reads. And a
leaf's prediction, which every node on an event's path asks for while the tree learns, copies
the leaf's class counts with ``copy.deepcopy`` twice, where a plain copy of the dict of numbers
is the same. On Agrawal its predict and learn took 123-130 µs an event, 81-101 with neither;
the adaptive tree's warm starts were the trainer's costliest item.

:func:`accelerate` swaps the class of each such tree a spec builds (its leaves follow), and
:func:`as_river` swaps River's back into a model to export, which must load with River alone.
Both trees answer the same to the bit, and draw the same random numbers (bootstrap sampling).

>>> from river import tree
>>> river = tree.HoeffdingAdaptiveTreeClassifier(grace_period=20, leaf_prediction="mc", seed=1)
>>> model = accelerate(river.clone())
>>> for i in range(300):
...     for learner in (model, river):
...         learner.learn_one({"x": i % 7, "z": i % 3}, i % 7 > 3 + (i > 150))
>>> type(model).__name__, model.n_nodes, model.predict_proba_one({"x": 6, "z": 0}) == (
...     river.predict_proba_one({"x": 6, "z": 0}))
('HoeffdingAdaptiveTreeClassifier', 5, True)
>>> type(next(as_river(model)._root.iter_leaves())).__name__
'AdaLeafClassifier'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from river import compose, tree
from river.tree.nodes.hatc_nodes import AdaLeafClassifier
from river.tree.nodes.htc_nodes import LeafMajorityClass, LeafNaiveBayesAdaptive
from river.utils.norm import normalize_values_in_dict

__all__ = ["AdaptiveLeaf", "HoeffdingAdaptiveTreeClassifier", "accelerate", "as_river"]

M = TypeVar("M")
_RIVER = tree.HoeffdingAdaptiveTreeClassifier
# River's classes, untyped: called through Any.
_MAJORITY: Any = LeafMajorityClass
_NAIVE_BAYES_ADAPTIVE: Any = LeafNaiveBayesAdaptive
_ADAPTIVE_LEAF: Any = AdaLeafClassifier
_RIVER_NEW_LEAF: Any = _RIVER._new_leaf
_ADAPTIVE_TREE: Any = _RIVER


class _ScoresNaiveBayesOnlyWhenRead(LeafNaiveBayesAdaptive):
    """A leaf that keeps naive Bayes' score against the majority class only for a tree whose
    leaves choose between them by it."""

    def learn_one(self, x: dict[Any, Any], y: Any, *, w: float = 1.0, tree: Any = None) -> None:
        if tree.leaf_prediction == tree._MAJORITY_CLASS:
            _MAJORITY.learn_one(self, x, y, w=w, tree=tree)
        else:
            _NAIVE_BAYES_ADAPTIVE.learn_one(self, x, y, w=w, tree=tree)


class AdaptiveLeaf(AdaLeafClassifier, _ScoresNaiveBayesOnlyWhenRead):
    """River's leaf of an adaptive tree; its majority-class answer without ``deepcopy``.

    River's ``AdaLeafClassifier.learn_one`` hands on to the next class of this one's order,
    which is :class:`_ScoresNaiveBayesOnlyWhenRead`, then River's naive Bayes leaf."""

    def prediction(self, x: dict[Any, Any], *, tree: Any = None) -> Any:
        if not self.stats:
            return None
        if _ADAPTIVE_LEAF.is_active(self) and tree.leaf_prediction != tree._MAJORITY_CLASS:
            return _ADAPTIVE_LEAF.prediction(self, x, tree=tree)
        # The class shares, weighted by the leaf's error as River's leaf weights them: the same
        # arithmetic on a copy of the counts, which are numbers.
        shares = normalize_values_in_dict(dict(self.stats))
        error = self._mean_error.get()
        return normalize_values_in_dict(shares, sum(shares.values()) * error * error)


class HoeffdingAdaptiveTreeClassifier(tree.HoeffdingAdaptiveTreeClassifier):
    """River's adaptive tree, growing :class:`AdaptiveLeaf` leaves."""

    def _new_leaf(self, initial_stats: dict[Any, float] | None = None, parent: Any = None) -> Any:
        leaf = _RIVER_NEW_LEAF(self, initial_stats, parent)
        leaf.__class__ = AdaptiveLeaf
        return leaf


def accelerate(model: M) -> M:
    """``model``, its adaptive trees that have learned nothing yet (in pipelines too) growing
    :class:`AdaptiveLeaf` leaves; anything else as it was."""
    for found in _trees(model):
        if type(found) is _RIVER and found._root is None:
            found.__class__ = HoeffdingAdaptiveTreeClassifier
    return model


def as_river(model: M) -> M:
    """``model`` with River's classes again where :func:`accelerate` swapped them."""
    for found in _trees(model):
        if type(found) is not HoeffdingAdaptiveTreeClassifier:
            continue
        found.__class__ = _ADAPTIVE_TREE
        for node in _nodes(found._root):
            if type(node) is AdaptiveLeaf:
                node.__class__ = _ADAPTIVE_LEAF
    return model


def _trees(model: Any) -> list[Any]:
    if isinstance(model, compose.Pipeline):
        return [found for step in model.steps.values() for found in _trees(step)]
    return [model] if isinstance(model, _RIVER) else []


def _nodes(node: Any) -> Iterator[Any]:
    """``node`` and every node under it, alternate trees included."""
    if node is None:
        return
    yield node
    for child in getattr(node, "children", ()):
        yield from _nodes(child)
    yield from _nodes(getattr(node, "_alternate_tree", None))
