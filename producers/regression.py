"""Drifting regression targets: Friedman #1 with moving relevant features, and a linear target.

River's ``FriedmanDrift`` fixes its change points at construction; these take the concept as an
argument instead, so the stream engine can switch, mix and revisit concepts at any index.

>>> xs, y = next(friedman(concept=1, seed=7))
>>> sorted(xs) == [f"x{i}" for i in range(10)], isinstance(y, float)
(True, True)
>>> x, y = next(linear(lambda index: [1.0, 0.0, 0.0, 0.0, 0.0], seed=7))
>>> abs(y - x["x0"]) < 0.5
True
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from river.datasets import synth

from meander.producers.seeds import derive_seed

__all__ = ["LINEAR_FEATURES", "friedman", "linear", "linear_weights"]

LINEAR_FEATURES = 5
_NOISE = 0.1


def friedman(concept: int, seed: int) -> Iterator[tuple[dict[str, float], float]]:
    """Friedman #1 samples whose five relevant inputs sit at other names under each concept.

    Concept 0 is River's ``Friedman``; concept k > 0 renames the ten inputs by a fixed
    permutation, so the target depends on other features (``FriedmanDrift``'s global drift).
    """
    names = [f"x{i}" for i in range(10)]
    if concept:
        random.Random(concept).shuffle(names)
    for x, y in synth.Friedman(seed=seed):
        yield {names[position]: value for position, value in x.items()}, float(y)


def linear_weights(concept: int, seed: int) -> list[float]:
    """The weights of the linear target under ``concept``: uniform in [-5, 5], seeded."""
    rng = random.Random(derive_seed(seed, "linear", concept))
    return [rng.uniform(-5.0, 5.0) for _ in range(LINEAR_FEATURES)]


def linear(
    weights_at: Callable[[int], list[float]], seed: int
) -> Iterator[tuple[dict[str, float], float]]:
    """Inputs uniform in [0, 1) and a target ``weights_at(index) . x`` plus Gaussian noise.

    ``weights_at`` gives the weights in force at each index: constant for one concept, moving
    for incremental drift.
    """
    rng = random.Random(seed)
    index = 0
    while True:
        x = {f"x{i}": rng.random() for i in range(LINEAR_FEATURES)}
        weights = weights_at(index)
        target = sum(w * value for w, value in zip(weights, x.values(), strict=True))
        yield x, target + rng.gauss(0.0, _NOISE)
        index += 1
