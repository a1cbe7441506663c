"""The streams of the adaptation benchmark: River's generators, River's own data, and ours.

Each stream is a list of samples with its task, its features' types, the indices where its
concept truly changes (empty when nobody knows, as in real data) and the part of the suite it
belongs to. The defaults of the loop were chosen on the ``tuning`` part only; the ``held_out``
part checks them. Synthetic streams have ``events`` samples and change every quarter of them.

>>> stream = build("stagger_recurring", events=40)
>>> stream.task, stream.drift, stream.drifts, stream.part
('binary', 'recurring', [10, 20, 30], 'tuning')
>>> len(stream.samples), sorted(stream.features)
(40, ['color', 'shape', 'size'])
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from river import datasets
from river.datasets import synth

from meander.producers.sample import Sample, event_id
from meander.producers.synthetic import synthetic

__all__ = ["CATALOGUE", "QUICK", "BenchStream", "build"]

Part = Literal["tuning", "held_out"]


@dataclass(frozen=True)
class BenchStream:
    """One stream of the suite, drawn in full."""

    key: str
    task: str
    features: dict[str, str]
    samples: list[Sample]
    drifts: list[int]  # where a change starts; [] for real data and incremental drift
    drift: str  # abrupt, gradual, incremental, recurring, or "unknown" for real data
    part: Part
    about: str  # what the stream is and where it comes from


@dataclass(frozen=True)
class _Entry:
    part: Part
    about: str
    make: Callable[[str, int, int], BenchStream]  # (key, events, seed)


def _generated(name: str, drift: str, part: Part, about: str, *, width: int = 0) -> _Entry:
    def make(key: str, events: int, seed: int) -> BenchStream:
        every = max(events // 4, 1)
        source = synthetic(
            name, drift=drift, drift_every=every, width=width or max(every // 5, 1), seed=seed
        )
        samples = list(source.samples(events))
        drifts = source.drift_points(events) if drift != "incremental" else []
        return BenchStream(key, source.task, source.features(), samples, drifts, drift, part, about)

    return _Entry(part, about, make)


def _river_data(
    loader: Callable[[], Iterable[tuple[dict[str, Any], Any]]],
    task: str,
    part: Part,
    about: str,
    *,
    label: Callable[[Any], Any] = lambda y: y,
) -> _Entry:
    def make(key: str, events: int, seed: int) -> BenchStream:
        rows = loader()
        samples = [
            Sample(i, event_id(key, 0, i), {str(k): v for k, v in x.items()}, label(y))
            for i, (x, y) in enumerate(rows)
        ]
        return BenchStream(key, task, _types(samples), samples, [], "unknown", part, about)

    return _Entry(part, about, make)


def _types(samples: list[Sample]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for sample in samples[:1_000]:
        for name, value in sample.features.items():
            if isinstance(value, bool):
                kind = "boolean"
            elif isinstance(value, int | float):
                kind = "numeric"
            else:
                kind = "categorical"
            kinds.setdefault(name, kind)
    return kinds


def _switching(
    key: str,
    events: int,
    seed: int,
    concepts: list[Iterable[tuple[dict[str, Any], Any]]],
    order: Callable[[int], int],
) -> tuple[list[Sample], list[int]]:
    """Samples drawn from ``concepts[order(segment)]``, a segment being a quarter of the run."""
    every = max(events // 4, 1)
    live = [iter(concept) for concept in concepts]
    samples: list[Sample] = []
    for index in range(events):
        concept = order(index // every)
        x, y = next(live[concept])
        samples.append(Sample(index, event_id(key, seed, index), x, y, concept))
    drifts = [start for start in range(every, events, every)]
    return samples, drifts


def _noisy_agrawal(key: str, events: int, seed: int) -> BenchStream:
    """Agrawal functions 1 and 4 taking turns, with 5 % of attribute perturbation, five
    uniform features that mean nothing, and 5 % of the labels flipped."""
    rng = random.Random(seed)

    def concept(function: int) -> Iterable[tuple[dict[str, Any], Any]]:
        source = synth.Agrawal(classification_function=function, perturbation=0.05, seed=seed)
        for x, y in source:
            noise = {f"noise{j}": rng.random() for j in range(5)}
            yield x | noise, bool(y) != (rng.random() < 0.05)

    samples, drifts = _switching(key, events, seed, [concept(1), concept(4)], lambda s: s % 2)
    features = {name: "numeric" for name in samples[0].features}
    features |= dict.fromkeys(("elevel", "car", "zipcode"), "categorical")
    return BenchStream(
        key, "binary", features, samples, drifts, "recurring", "held_out", _ABOUT[key]
    )


def _categorical_rules(key: str, events: int, seed: int) -> BenchStream:
    """Six categorical features of five levels; the label is a rule on three of them,
    ``(a in {p, q} and b in {p, q, r}) or c == t``, with 10 % of labels flipped. Each change
    moves the rule onto other features."""
    rng = random.Random(seed)
    features = [f"c{j}" for j in range(6)]
    rules = [(0, 1, 2), (3, 4, 5), (1, 5, 0), (2, 0, 4)]

    def concept(rule: tuple[int, int, int]) -> Iterable[tuple[dict[str, Any], Any]]:
        a, b, c = (features[i] for i in rule)
        while True:
            x = {name: "pqrst"[rng.randrange(5)] for name in features}
            y = (x[a] in "pq" and x[b] in "pqr") or x[c] == "t"
            yield x, y != (rng.random() < 0.1)

    samples, drifts = _switching(key, events, seed, [concept(r) for r in rules], lambda s: s % 4)
    kinds = dict.fromkeys(features, "categorical")
    return BenchStream(key, "binary", kinds, samples, drifts, "abrupt", "tuning", _ABOUT[key])


def _led(key: str, events: int, seed: int) -> BenchStream:
    """River's seven-segment digits with 17 irrelevant features and 10 % noise; two concepts
    take turns: the plain one, and one where seven features trade places."""

    def concept(moved: int) -> Iterable[tuple[dict[str, Any], Any]]:
        source = synth.LEDDrift(
            seed=seed + moved,
            noise_percentage=0.1,
            irrelevant_features=True,
            n_drift_features=moved,
        )
        for x, y in source:
            yield {f"x{k}": float(v) for k, v in x.items()}, int(y)

    samples, drifts = _switching(key, events, seed, [concept(0), concept(7)], lambda s: s % 2)
    kinds = {name: "numeric" for name in samples[0].features}
    return BenchStream(
        key, "multiclass", kinds, samples, drifts, "recurring", "tuning", _ABOUT[key]
    )


def _own(make: Callable[[str, int, int], BenchStream], part: Part, key: str) -> _Entry:
    return _Entry(part, _ABOUT[key], make)


_ABOUT = {
    "agrawal_noisy": "ours: Agrawal 1 <-> 4, perturbed, 5 irrelevant features, 5 % label noise",
    "categorical_rules": "ours: a rule on 3 of 6 categorical features, 10 % noise, moving",
    "led_recurring": "ours: River's LED digits, 17 irrelevant features, 10 % noise, 2 concepts",
}

CATALOGUE: dict[str, _Entry] = {
    # binary
    "agrawal_abrupt": _generated(
        "agrawal", "abrupt", "tuning", "River's Agrawal, functions 0 -> 2 -> 5 -> 8; mixed"
    ),
    "agrawal_gradual": _generated(
        "agrawal",
        "gradual",
        "held_out",
        "River's Agrawal, 0 -> 2 -> 5 -> 8 over 2/5 of a period",
        width=0,
    ),
    "sea_abrupt": _generated("sea", "abrupt", "tuning", "River's SEA, 10 % noise, 3 numeric"),
    "sea_gradual": _generated("sea", "gradual", "held_out", "River's SEA, gradual changes"),
    "stagger_recurring": _generated(
        "stagger", "recurring", "tuning", "River's STAGGER, 2 concepts taking turns; categorical"
    ),
    "hyperplane_incremental": _generated(
        "hyperplane", "incremental", "tuning", "River's Hyperplane, rotating; 10 numeric"
    ),
    "sine_abrupt": _generated("sine", "abrupt", "held_out", "River's Sine, 4 functions; 2 numeric"),
    "mixed_recurring": _generated(
        "mixed", "recurring", "held_out", "River's Mixed, 2 functions; boolean and numeric"
    ),
    "agrawal_noisy": _own(_noisy_agrawal, "held_out", "agrawal_noisy"),
    "categorical_rules": _own(_categorical_rules, "tuning", "categorical_rules"),
    "phishing": _river_data(
        datasets.Phishing,
        "binary",
        "tuning",
        "River's Phishing data, 1,250 web pages",
        label=bool,
    ),
    "bananas": _river_data(
        datasets.Bananas, "binary", "held_out", "River's Bananas data, 5,300 points in 2D"
    ),
    "shuttle": _river_data(
        lambda: itertools.islice(datasets.Shuttle(), 20_000),
        "binary",
        "held_out",
        "River's Shuttle data, first 20,000 rows; rare positives",
    ),
    # multiclass
    "rbf_incremental": _generated(
        "rbf", "incremental", "tuning", "River's RandomRBFDrift, 4 classes, moving centroids"
    ),
    "rbf_abrupt": _generated("rbf", "abrupt", "held_out", "River's RandomRBF, 4 classes, 4 models"),
    "led_recurring": _own(_led, "tuning", "led_recurring"),
    "image_segments": _river_data(
        datasets.ImageSegments, "multiclass", "held_out", "River's image segments, 7 classes"
    ),
    # regression
    "friedman_abrupt": _generated(
        "friedman", "abrupt", "tuning", "Friedman #1, relevant features move at each change"
    ),
    "friedman_gradual": _generated(
        "friedman", "gradual", "held_out", "Friedman #1, gradual changes"
    ),
    "linear_incremental": _generated(
        "linear", "incremental", "held_out", "a linear target whose weights move"
    ),
    "trump_approval": _river_data(
        datasets.TrumpApproval, "regression", "tuning", "River's Trump approval data, 1,001 days"
    ),
    "chick_weights": _river_data(
        datasets.ChickWeights, "regression", "held_out", "River's chick weights data, 578 rows"
    ),
}

QUICK = ("stagger_recurring", "sea_abrupt", "rbf_incremental", "friedman_abrupt", "phishing")


def build(key: str, *, events: int = 20_000, seed: int = 42) -> BenchStream:
    """Stream ``key`` of the catalogue, with ``events`` samples when it is synthetic."""
    entry = CATALOGUE.get(key)
    if entry is None:
        raise KeyError(f"unknown stream {key!r}; the suite has: {', '.join(CATALOGUE)}")
    stream = entry.make(key, events, seed)
    if stream.part != entry.part:
        stream = BenchStream(**{**stream.__dict__, "part": entry.part})
    return stream
