"""Pickling models without what no prediction or learning ever reads.

River's Gaussian splitter, at the heart of every Hoeffding tree, keeps a ``proba.Gaussian`` per
leaf, numeric feature and class, and each Gaussian owns a ``random.Random``: 2.5 KB of Mersenne
Twister state, seeded from the operating system and used only by ``Gaussian.sample()``, which
no tree calls. They made up about 6.4 of the 7.2 MB of an ``ARFClassifier(n_models=10)`` after
5,000 events, and most of the time spent pickling it. :func:`dumps` leaves the state of such an
unseeded generator out; the model is unpickled with :func:`pickle.loads` as ever, and its
Gaussians get a generator that is just as unseeded. A seeded distribution keeps its state, so
a model that samples reproducibly still does.

The E-BST that a Hoeffding regression tree keeps per leaf and numeric feature is a binary search
tree of the values seen, unbalanced: on a feature that only grows (a date, a counter) it is a
chain as long as the values a leaf saw, and pickle's recursion through it failed after a few hundred
of them (a learner could not checkpoint such a champion, a trainer not register such a
challenger). :func:`dumps` writes each E-BST as a flat list of its nodes instead.

:func:`loads` unpickles with the garbage collector paused. A model's objects all outlive the
load, yet every 700 of them made set off a young collection that freed nothing, every tenth of
those a middle one, and the middle ones counted towards a full one: loading an ARF(10) snapshot
(some 35,000 objects) ran about 43 young and 4 middle collections, and in the closed loop, whose
predictor loads one every 640 labels, the full collections went from 3 to 8 per 10,000 events
(each over some 110,000 objects). Paused, the new objects are looked at once, when it resumes.

>>> import pickle
>>> from river import proba
>>> gaussian = proba.Gaussian()
>>> for value in (1.0, 2.0, 4.0):
...     gaussian.update(value)
>>> len(dumps(gaussian)) < len(pickle.dumps(gaussian)) // 10
True
>>> pickle.loads(dumps(gaussian)).mu == gaussian.mu
True
"""

from __future__ import annotations

import copyreg
import gc
import io
import pickle
import random
from typing import Any

from river import proba
from river.tree.splitter.ebst_splitter import EBSTNode

__all__ = ["dumps", "loads"]

_UNSEEDED = random.Random()  # shared by every restored unseeded distribution


def _restore(cls: type[proba.Gaussian], state: dict[str, Any]) -> proba.Gaussian:
    distribution = cls.__new__(cls)
    distribution.__dict__.update(state)
    distribution._rng = _UNSEEDED
    return distribution


def _reduce(distribution: proba.Gaussian) -> Any:
    if distribution.seed is not None:
        return distribution.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    state = {k: v for k, v in distribution.__dict__.items() if k != "_rng"}
    return _restore, (type(distribution), state)


_Row = tuple[Any, Any, Any, int, int]  # att_val, estimator, update function, left, right


def _rebuild(cls: type[EBSTNode], rows: list[_Row]) -> EBSTNode:
    nodes = [cls.__new__(cls) for _ in rows]
    for node, (value, estimator, update, left, right) in zip(nodes, rows, strict=True):
        node.att_val, node.estimator, node._update_estimator = value, estimator, update
        node._left = nodes[left] if left else None  # 0 is the root, never a child
        node._right = nodes[right] if right else None
    return nodes[0]


def _flatten(root: EBSTNode) -> Any:
    nodes, rows = [root], []
    for node in nodes:  # grows as it goes: breadth first, no recursion
        links = []
        for child in (node._left, node._right):
            links.append(len(nodes) if child is not None else 0)
            if child is not None:
                nodes.append(child)
        rows.append((node.att_val, node.estimator, node._update_estimator, *links))
    return _rebuild, (type(root), rows)


class _Pickler(pickle.Pickler):
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[proba.Gaussian] = _reduce
    dispatch_table[EBSTNode] = _flatten


def dumps(obj: Any) -> bytes:
    """``pickle.dumps(obj)``, less the state of unseeded random generators nobody reads, and
    with search trees of split candidates written flat."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    """``pickle.loads(data)``, with the garbage collector paused while it runs (unless it was
    off already): nothing a load makes is garbage, so a collection in the middle finds none."""
    if not gc.isenabled():
        return pickle.loads(data)
    gc.disable()
    try:
        return pickle.loads(data)
    finally:
        gc.enable()
