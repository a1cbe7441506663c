"""WindowSearch: River's nearest neighbours, found on a matrix of the window."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from river import neighbors

from meander.models.blobs import dumps
from meander.models.neighbours import WindowSearch, accelerate, as_river
from meander.models.specs import build_model

KNN = (
    "preprocessing.StandardScaler"
    " | neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=30))"
)


def _river(size: int) -> neighbors.LazySearch:
    return neighbors.LazySearch(size, dist_func=neighbors.base._euclidean_tuple_distance)


def _one_hot(rng: random.Random) -> dict[str, float]:
    # Few categories: many events at the same distance, where the older one must come first.
    return {f"c{i}_{rng.choice('pq')}": 1.0 for i in range(rng.randint(1, 4))}


def _numbers(rng: random.Random) -> dict[str, float]:
    return {f"x{i}": rng.gauss(0.0, 1.0) for i in range(rng.randint(2, 4))}


@pytest.mark.parametrize("features", [_one_hot, _numbers])
@pytest.mark.parametrize("size", [1, 7, 50])
def test_the_same_neighbours_as_rivers_search(features: Any, size: int) -> None:
    rng = random.Random(size)
    river, ours = _river(size), WindowSearch(size)
    for label in range(300):  # the window fills, then drops its oldest events
        item = (features(rng), label)
        river.append(item)
        ours.append(item)
        query = (features(rng), None)
        k = rng.choice([1, 3, 5, 60])
        expected, found = river.search(query, k), ours.search(query, k)
        assert [x[1] for x in found[0]] == [x[1] for x in expected[0]]
        assert found[1] == pytest.approx(expected[1], rel=1e-12)


def test_a_value_that_is_no_number_leaves_the_search_to_river() -> None:
    river, ours = _river(5), WindowSearch(5)
    for item in [({"a": 1.0}, 0), ({"a": True}, 1), ({"a": 3}, 2)]:
        river.append(item)
        ours.append(item)
    assert ours.search(({"a": 2.5}, None), 2) == river.search(({"a": 2.5}, None), 2)
    ours.append(({"a": "text"}, 3))
    assert not ours._numeric


def test_few_features_are_searched_river_s_way_until_a_fourth_comes() -> None:
    rng = random.Random(3)
    river, ours = _river(30), WindowSearch(30)
    for label in range(60):
        names = ["x0", "x1"] if label < 40 else ["x0", "x1", "x2", "x3"]
        item = ({name: rng.gauss(0.0, 1.0) for name in names}, label)
        river.append(item)
        ours.append(item)
        assert ours._matrix == (label >= 40)
        query = ({name: rng.gauss(0.0, 1.0) for name in names}, None)
        found, expected = ours.search(query, 5), river.search(query, 5)
        if label < 40:  # River's own search: the same to the bit
            assert found == expected
        assert [x[1] for x in found[0]] == [x[1] for x in expected[0]]
        assert found[1] == pytest.approx(expected[1], rel=1e-12)
    assert list(pickle.loads(pickle.dumps(ours))._columns) == ["x0", "x1", "x2", "x3"]


def test_a_pickled_search_answers_as_before_to_the_bit() -> None:
    rng = random.Random(1)
    ours = WindowSearch(20)

    def event(label: int) -> dict[str, float]:
        # Features come and go: the first ones leave the window before the copy is made.
        return {f"x{(label // 10 + i) % 9}": rng.gauss(0.0, 1.0) for i in range(3)}

    for label in range(45):
        ours.append((event(label), label))
    for start, write in [(45, dumps), (70, pickle.dumps)]:
        copy = pickle.loads(write(ours))
        assert isinstance(copy, WindowSearch)
        for label in range(start, start + 25):
            query = (event(label), None)
            assert copy.search(query, 4) == ours.search(query, 4)
            item = (event(label), label)
            ours.append(item)
            copy.append(item)


def test_a_model_built_from_a_spec_searches_faster_and_answers_as_rivers() -> None:
    rng = random.Random(2)
    ours, river = build_model(KNN), build_model(KNN)
    as_river(river)
    assert isinstance(ours["KNNClassifier"]._nn, WindowSearch)
    assert type(river["KNNClassifier"]._nn) is neighbors.LazySearch
    for _ in range(200):
        x = {"x0": rng.gauss(0.0, 1.0), "x1": rng.gauss(0.0, 1.0)}
        assert ours.predict_proba_one(x) == pytest.approx(river.predict_proba_one(x))
        y = x["x0"] > 0
        ours.learn_one(x, y)
        river.learn_one(x, y)
    assert type(accelerate(river)["KNNClassifier"]._nn) is WindowSearch


def test_other_searches_are_left_as_they_are() -> None:
    kept = neighbors.LazySearch(window_size=5, min_distance_keep=0.5)
    model = accelerate(neighbors.KNNRegressor(engine=kept))
    assert type(model._nn) is neighbors.LazySearch
