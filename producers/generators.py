"""The synthetic generators a stream can be made of, each described once.

A :class:`Generator` knows its task, its features and its concepts, and makes a River
generator for one concept (``concept``) or, when it can, one that moves continuously
(``moving``, for incremental drift). Integer feature keys become ``x0, x1, ...`` so that every
feature name is a JSON key and a config key.

>>> sorted(GENERATORS)
['agrawal', 'friedman', 'hyperplane', 'linear', 'mixed', 'rbf', 'sea', 'sine', 'stagger']
>>> GENERATORS["stagger"].features
{'size': 'categorical', 'color': 'categorical', 'shape': 'categorical'}
>>> x, y = next(GENERATORS["sea"].concept(2, 42))
>>> sorted(x), type(y).__name__
(['x0', 'x1', 'x2'], 'bool')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from river.datasets import synth

from meander.producers import regression
from meander.producers.seeds import derive_seed

__all__ = ["GENERATORS", "Generator", "Raw"]

Raw = Iterator[tuple[dict[str, Any], Any]]
FeatureType = Literal["numeric", "categorical", "boolean"]


@dataclass(frozen=True)
class Generator:
    """How to make one synthetic source.

    ``concept(k, seed)`` yields samples of concept ``k`` (one of ``concepts``) for the stream
    seeded with ``seed``. ``moving(seed, drift_every)``, when set, yields samples whose concept
    starts as concept 0's and moves a little at every event, about one concept's distance every
    ``drift_every`` events.
    """

    name: str
    task: Literal["binary", "multiclass", "regression"]
    features: dict[str, FeatureType]
    concepts: tuple[int, ...]
    concept: Callable[[int, int], Raw]
    moving: Callable[[int, int], Raw] | None = None


def _named(samples: Iterable[tuple[dict[Any, Any], Any]]) -> Raw:
    # River numbers the features of many generators; JSON and TOML keys must be text.
    for x, y in samples:
        yield {k if isinstance(k, str) else f"x{k}": v for k, v in x.items()}, y


def _of(seed: int, name: str, concept: int) -> int:
    # Each concept draws its own samples: two concepts never share their inputs.
    return derive_seed(seed, name, concept)


def _numeric(count: int) -> dict[str, FeatureType]:
    return {f"x{i}": "numeric" for i in range(count)}


_RBF_SHAPE = {"n_classes": 4, "n_features": 10, "n_centroids": 50}


def _speed(drift_every: int) -> float:
    # A unit of movement (weights in [0, 1], centroids in the unit cube) per drift_every events.
    return 1.0 / drift_every


def _hyperplane(concept: int, seed: int) -> Raw:
    return _named(synth.Hyperplane(seed=_of(seed, "hyperplane", concept)))


def _moving_hyperplane(seed: int, drift_every: int) -> Raw:
    # River flips a weight's direction with probability sigma - 0.01 per event; flipping about
    # once per drift_every events lets the plane travel instead of jittering in place.
    sigma = min(1.0, 0.01 + _speed(drift_every))
    plane = synth.Hyperplane(
        seed=_of(seed, "hyperplane", 0), mag_change=_speed(drift_every), sigma=sigma
    )
    return _named(plane)


def _rbf(concept: int, seed: int) -> Raw:
    seeds = {"seed_model": _of(seed, "rbf", concept), "seed_sample": _of(seed, "rbf-x", concept)}
    return _named(synth.RandomRBF(**seeds, **_RBF_SHAPE))


def _moving_rbf(seed: int, drift_every: int) -> Raw:
    # Concept 0's centroids, set in motion; RandomRBFDrift moves every centroid at each event,
    # which is slow, so the static concepts use RandomRBF.
    seeds = {"seed_model": _of(seed, "rbf", 0), "seed_sample": _of(seed, "rbf-x", 0)}
    moving = synth.RandomRBFDrift(**seeds, **_RBF_SHAPE, change_speed=_speed(drift_every))
    return _named(moving)


def _linear_concept(concept: int, seed: int) -> Raw:
    weights = regression.linear_weights(concept, seed)
    return regression.linear(lambda _: weights, _of(seed, "linear-x", concept))


def _moving_linear(seed: int, drift_every: int) -> Raw:
    concepts = GENERATORS["linear"].concepts
    table = [regression.linear_weights(c, seed) for c in concepts]

    def weights_at(index: int) -> list[float]:
        # From concept j's weights to concept j+1's, linearly, over each drift_every events.
        segment, offset = divmod(index, drift_every)
        start, end = table[segment % len(table)], table[(segment + 1) % len(table)]
        share = offset / drift_every
        return [a + (b - a) * share for a, b in zip(start, end, strict=True)]

    return regression.linear(weights_at, _of(seed, "linear-x-moving", 0))


_AGRAWAL_CATEGORICAL = ("elevel", "car", "zipcode")
_AGRAWAL = ("salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan")

GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator(
            "agrawal",
            "binary",
            {f: "categorical" if f in _AGRAWAL_CATEGORICAL else "numeric" for f in _AGRAWAL},
            (0, 2, 5, 8),
            lambda k, seed: iter(
                synth.Agrawal(classification_function=k, seed=_of(seed, "agrawal", k))
            ),
        ),
        Generator(
            "sea",
            "binary",
            _numeric(3),
            (0, 1, 2, 3),
            lambda k, seed: _named(synth.SEA(variant=k, noise=0.1, seed=_of(seed, "sea", k))),
        ),
        Generator(
            "hyperplane", "binary", _numeric(10), (0, 1, 2, 3), _hyperplane, _moving_hyperplane
        ),
        Generator("rbf", "multiclass", _numeric(10), (0, 1, 2, 3), _rbf, _moving_rbf),
        Generator(
            "stagger",
            "binary",
            dict.fromkeys(("size", "color", "shape"), "categorical"),
            (0, 1, 2),
            lambda k, seed: iter(
                synth.STAGGER(classification_function=k, seed=_of(seed, "stagger", k))
            ),
        ),
        Generator(
            "sine",
            "binary",
            _numeric(2),
            (0, 1, 2, 3),
            lambda k, seed: _named(
                synth.Sine(classification_function=k, seed=_of(seed, "sine", k))
            ),
        ),
        Generator(
            "mixed",
            "binary",
            {"x0": "boolean", "x1": "boolean", "x2": "numeric", "x3": "numeric"},
            (0, 1),
            lambda k, seed: _named(
                synth.Mixed(classification_function=k, seed=_of(seed, "mixed", k))
            ),
        ),
        Generator(
            "friedman",
            "regression",
            _numeric(10),
            (0, 1, 2, 3),
            lambda k, seed: regression.friedman(k, _of(seed, "friedman", k)),
        ),
        Generator(
            "linear",
            "regression",
            _numeric(regression.LINEAR_FEATURES),
            (0, 1, 2, 3),
            _linear_concept,
            _moving_linear,
        ),
    )
}
