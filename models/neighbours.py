"""Nearest-neighbour search over a window of events, the answers of River's, at a fraction of
its cost.

River's ``neighbors.LazySearch`` measures the Euclidean distance from a query to each event of
its window one dict at a time: 84 µs a search over 300 events of three one-hot features, 184
µs over six, where a matrix of the window's values answers in about 20. A k-NN model in the
search space made that a third of the loop's time on a stream of categories. A
:class:`WindowSearch` keeps River's window as it is, and beside it the same events as rows of
a matrix, one column per feature seen; it finds the same neighbours, in the same order (ties
go to the older event, as River's do), at the same distances up to rounding.

A model keeps River's parameters (its spec, its clones): :func:`accelerate` swaps the search
inside each k-NN model built from a spec, and :func:`as_river` swaps River's back into a model
to export, which must load with River alone.

>>> from river import neighbors
>>> model = accelerate(neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=3)))
>>> type(model._nn).__name__
'WindowSearch'
>>> for x, y in [({"a": 1.0}, True), ({"a": 2.0}, False), ({"b": 1.0}, True)]:
...     model.learn_one(x, y)
>>> model.predict_one({"a": 1.9})
False
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from river import compose, neighbors
from river.neighbors.base import _euclidean_tuple_distance

__all__ = ["WindowSearch", "accelerate", "as_river", "restore"]

_MODELS = (neighbors.KNNClassifier, neighbors.KNNRegressor)
# Over fewer features River's search is as quick as the matrix's (a few dicts of two or three
# values), and keeping the matrix up to date cost the loop 5-8 % on such streams.
FEW_COLUMNS = 4
M = TypeVar("M")


class WindowSearch(neighbors.LazySearch):
    """``LazySearch`` with the Euclidean distance, over a matrix of the window's features."""

    def __init__(self, window_size: int = 50) -> None:
        super().__init__(window_size=window_size, dist_func=_euclidean_tuple_distance)  # type: ignore[arg-type]
        self._index()

    def _index(self, *, keep_columns: bool = False) -> None:
        """The matrix of the window's events: row ``(first + i) % window_size`` holds event i.
        Below ``FEW_COLUMNS`` features there is none: the columns are only counted."""
        if not keep_columns:
            self._columns: dict[Any, int] = {}
        self._rows = np.zeros((self.window_size, max(8, len(self._columns))))
        self._first = self._count = 0
        self._numeric = True  # False once a value is no number: River's search takes over
        self._matrix = len(self._columns) >= FEW_COLUMNS
        for entry in self.window:
            self._learn(entry[0][0])

    def append(self, item: Any, extra: Any | None = None, **kwargs: Any) -> None:
        super().append(item, extra=extra, **kwargs)
        self._learn(item[0])

    def _learn(self, x: dict[Any, Any]) -> None:
        if self._matrix:
            self._add(x)
            return
        columns = self._columns  # in the order the matrix would have them
        for key, value in x.items():
            if not isinstance(value, int | float):
                self._numeric = False
            if key not in columns:
                columns[key] = len(columns)
        if len(columns) >= FEW_COLUMNS:
            self._index(keep_columns=True)  # the window holds x already

    def _add(self, x: dict[Any, Any]) -> None:
        if self._count < self.window_size:
            row = (self._first + self._count) % self.window_size
            self._count += 1
        else:  # the window dropped its oldest event: this one takes its row
            row = self._first
            self._first = (self._first + 1) % self.window_size
        values = self._rows[row]
        values[:] = 0.0
        for key, value in x.items():
            if not isinstance(value, int | float):
                self._numeric = False
                return
            column = self._columns.get(key)
            if column is None:
                column = self._column(key)
                values = self._rows[row]
            values[column] = value

    def _column(self, key: Any) -> int:
        column = self._columns[key] = len(self._columns)
        if column == self._rows.shape[1]:
            wider = np.zeros((self.window_size, 2 * column))
            wider[:, :column] = self._rows
            self._rows = wider
        return column

    def search(self, item: Any, n_neighbors: int, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        count = len(self.window)
        if not self._matrix or not self._numeric or not count:
            return self._river(item, n_neighbors, **kwargs)
        query = np.zeros(self._rows.shape[1])
        outside = 0.0  # the query's features no event of the window has
        for key, value in item[0].items():
            if not isinstance(value, int | float):
                return self._river(item, n_neighbors, **kwargs)
            column = self._columns.get(key)
            if column is None:
                outside += value * value
            else:
                query[column] = value
        differences = self._rows[:count] - query  # the ring's rows: count < size has first 0
        squares = np.einsum("ij,ij->i", differences, differences) + outside
        if self._first:  # oldest first, as the window
            squares = np.concatenate((squares[self._first :], squares[: self._first]))
        nearest = np.argsort(squares, kind="stable")[:n_neighbors]
        window = self.window
        return [window[i][0] for i in nearest], [math.sqrt(squares[i]) for i in nearest]

    def _river(self, item: Any, n_neighbors: int, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        found: tuple[list[Any], list[Any]] = super().search(item, n_neighbors, **kwargs)
        return found

    def __reduce__(self) -> tuple[Any, ...]:
        # The window, not the matrix: a snapshot is no bigger than one of River's search. The
        # columns keep their order, so that the matrix rebuilt sums each distance in the same
        # order, to the same bits: a learner restored from a checkpoint answers as before.
        columns = list(self._columns)
        return restore, (self.window_size, list(self.window), columns, self._numeric)


def accelerate(model: M) -> M:
    """``model``, its k-NN models (in pipelines too) searching with :class:`WindowSearch`
    where they search River's way with the Euclidean distance; anything else as it was."""
    for knn in _neighbour_models(model):
        search = knn._nn
        if (
            type(search) is neighbors.LazySearch
            and search.dist_func is _euclidean_tuple_distance
            and search.min_distance_keep == 0
        ):
            knn._nn = restore(search.window_size, list(search.window))
    return model


def as_river(model: Any) -> Any:
    """``model`` with River's own search again, where :func:`accelerate` swapped it: what a
    model file holds, to be loaded with River alone."""
    for knn in _neighbour_models(model):
        if isinstance(knn._nn, WindowSearch):
            search = neighbors.LazySearch(knn._nn.window_size, dist_func=knn._nn.dist_func)
            search.window.extend(knn._nn.window)
            knn._nn = search
    return model


def restore(
    window_size: int, window: list[Any], columns: Sequence[Any] = (), numeric: bool = True
) -> WindowSearch:
    """A :class:`WindowSearch` holding ``window`` (River's window entries, oldest first), its
    matrix's columns in the order of ``columns`` first."""
    search = WindowSearch(window_size=window_size)
    search.window.extend(window)
    for key in columns:
        search._column(key)
    search._index(keep_columns=True)
    search._numeric = search._numeric and numeric
    return search


def _neighbour_models(model: Any) -> list[Any]:
    if isinstance(model, compose.Pipeline):
        return [knn for step in model.steps.values() for knn in _neighbour_models(step)]
    return [model] if isinstance(model, _MODELS) else []
