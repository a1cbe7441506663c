"""Synthetic drifting streams: drift where it is said to be, and the same stream for a seed."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import orjson
import pytest

from meander.bus import MemoryBroker, MemoryBus, TopicPartition
from meander.config import StreamConfig
from meander.events import FeatureEvent, Feedback, decode
from meander.producers import (
    GENERATORS,
    DriftingStream,
    Sample,
    SourceError,
    publish_stream,
    synthetic,
)
from meander.producers.synthetic import Drift

SWITCHING = ("abrupt", "gradual", "recurring")


def _changes(concepts: Sequence[int | None]) -> list[int]:
    return [i for i in range(1, len(concepts)) if concepts[i] != concepts[i - 1]]


def test_abrupt_concepts_change_exactly_at_the_drift_points() -> None:
    stream = synthetic("agrawal", drift="abrupt", drift_every=100, seed=1)
    concepts = [sample.concept for sample in stream.samples(450)]
    assert _changes(concepts) == stream.drift_points(450) == [100, 200, 300, 400]
    assert concepts[::100] == [0, 2, 5, 8, 0]  # cycles back to the first concept
    assert stream.drifts(250) == [Drift(100, 0, 0, 2), Drift(200, 0, 2, 5)]


def test_recurring_drift_alternates_the_first_two_concepts() -> None:
    stream = synthetic("sine", drift="recurring", drift_every=50, seed=2)
    concepts = [sample.concept for sample in stream.samples(250)]
    assert concepts[::50] == [0, 1, 0, 1, 0]
    assert _changes(concepts) == stream.drift_points(250) == [50, 100, 150, 200]


def test_a_recurring_concept_resumes_its_generator_instead_of_repeating_it() -> None:
    samples = list(synthetic("sea", drift="recurring", drift_every=20, seed=3).samples(60))
    first, again = samples[:20], samples[40:]
    assert {s.concept for s in first} == {s.concept for s in again} == {0}
    assert [s.features for s in first] != [s.features for s in again]


def test_gradual_drift_mixes_concepts_inside_the_width_only() -> None:
    stream = synthetic("agrawal", drift="gradual", drift_every=1_000, width=400, seed=4)
    concepts = [sample.concept for sample in stream.samples(3_000)]
    for drift in stream.drifts(3_000):
        before = concepts[drift.start - 600 : drift.start]
        window = concepts[drift.start : drift.start + drift.width]
        after = concepts[drift.start + drift.width : drift.start + 600]
        assert set(before) == {drift.before} and set(after) == {drift.after}
        assert set(window) == {drift.before, drift.after}
        # The new concept's share climbs across the width: rare early, common late.
        early, late = window[:100].count(drift.after), window[-100:].count(drift.after)
        assert early < 30 < 70 < late


def test_gradual_drift_points_report_start_and_width() -> None:
    stream = synthetic("stagger", drift="gradual", drift_every=500, width=100, seed=5)
    assert stream.drifts(1_200) == [Drift(500, 100, 0, 1), Drift(1_000, 100, 1, 2)]
    assert stream.drift_points(1_200) == [500, 1_000]


@pytest.mark.parametrize("name", ["hyperplane", "rbf", "linear"])
def test_incremental_drift_moves_from_the_start_without_concepts(name: str) -> None:
    stream = synthetic(name, drift="incremental", drift_every=200, seed=6)
    samples = list(stream.samples(1_000))
    assert {sample.concept for sample in samples} == {None}
    assert stream.drifts(1_000) == [Drift(0, 1_000, None, None)]


def test_an_incremental_hyperplane_leaves_an_early_fit_behind() -> None:
    # A plane fitted on the first events keeps its accuracy on a static stream and loses it on
    # a moving one.
    def accuracy_early_and_late(drift: str, drift_every: int) -> list[float]:
        stream = synthetic("hyperplane", drift=drift, drift_every=drift_every, seed=7)
        samples = list(stream.samples(20_000))
        x = np.array([[1.0, *s.features.values()] for s in samples])
        y = np.array([s.label for s in samples])
        weights = np.linalg.lstsq(x[:3_000], y[:3_000], rcond=None)[0]
        return [
            float(((x[i : i + 2_000] @ weights > 0.5) == y[i : i + 2_000]).mean())
            for i in (3_000, 18_000)
        ]

    static = accuracy_early_and_late("abrupt", drift_every=100_000)
    moving = accuracy_early_and_late("incremental", drift_every=500)
    assert abs(static[0] - static[1]) < 0.02
    assert moving[0] - moving[1] > 0.1


def test_incremental_linear_target_passes_through_each_concept() -> None:
    moving = synthetic("linear", drift="incremental", drift_every=1_000, seed=8)
    samples = list(moving.samples(2_000))
    # Refit the weights on a short window at the start and at the end of a period: they differ.
    first = _least_squares(samples[:200])
    middle = _least_squares(samples[900:1_000])
    assert np.abs(first - middle).max() > 1.0


def _least_squares(samples: list[Sample]) -> np.ndarray:
    x = np.array([list(s.features.values()) for s in samples])
    y = np.array([s.label for s in samples])
    weights: np.ndarray = np.linalg.lstsq(x, y, rcond=None)[0]
    return weights


def test_generators_without_a_moving_concept_refuse_incremental_drift() -> None:
    with pytest.raises(SourceError, match="incremental drift needs one of"):
        synthetic("agrawal", drift="incremental")


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("drift", SWITCHING)
def test_the_same_seed_gives_the_same_stream(name: str, drift: str) -> None:
    def take(seed: int) -> list[Sample]:
        stream = synthetic(name, drift=drift, drift_every=30, width=10, seed=seed)
        return list(stream.samples(100))

    assert take(3) == take(3) != take(4)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_samples_are_plain_json_values_that_fit_the_declared_features(name: str) -> None:
    stream = synthetic(name, drift_every=50, seed=9)
    config = stream.stream_config()
    assert isinstance(config, StreamConfig) and config.task == stream.task
    kinds = {"numeric": (int, float), "categorical": (int, str), "boolean": (bool,)}
    for sample in stream.samples(120):
        assert set(sample.features) == set(stream.features())
        for feature, value in sample.features.items():
            assert type(value) in kinds[stream.features()[feature]], (feature, value)
        assert type(sample.label) in (bool, int, float)
        if stream.task == "regression":
            assert math.isfinite(sample.label)
        orjson.dumps(sample.features)  # would raise on numpy scalars


def test_event_ids_are_deterministic_and_numbered() -> None:
    samples = list(synthetic("sea", seed=11).samples(3))
    assert [s.event_id for s in samples] == [
        "sea-11-00000000",
        "sea-11-00000001",
        "sea-11-00000002",
    ]
    assert [s.index for s in samples] == [0, 1, 2]


def test_an_endless_stream_has_no_end() -> None:
    endless = synthetic("mixed", seed=12).samples()
    assert len(list(itertools.islice(endless, 25_000))) == 25_000


def test_labels_follow_the_concept() -> None:
    # SEA's variants use different thresholds: the same points get other labels after a drift.
    samples = list(synthetic("sea", drift_every=2_000, seed=5).samples(4_000))
    rate = [sum(s.label for s in samples[i : i + 2_000]) / 2_000 for i in (0, 2_000)]
    assert abs(rate[0] - rate[1]) > 0.02


def test_friedman_concepts_move_the_relevant_features() -> None:
    # Under concept 0 the target grows with x3 (10 * x3); under another concept x3 is noise.
    stream = synthetic("friedman", drift_every=3_000, seed=13)
    samples = list(stream.samples(6_000))
    slopes = [
        np.corrcoef([s.features["x3"] for s in part], [s.label for s in part])[0, 1]
        for part in (samples[:3_000], samples[3_000:])
    ]
    assert slopes[0] > 0.3 and abs(slopes[1]) < 0.1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "nope"}, "choose one of"),
        ({"name": "sea", "drift": "sideways"}, "unknown drift"),
        ({"name": "sea", "drift": "gradual", "drift_every": 100, "width": 200}, "width"),
        ({"name": "sea", "drift_every": 0}, "drift_every"),
    ],
)
def test_bad_settings_are_refused_with_the_choices(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        synthetic(**arguments)  # type: ignore[arg-type]


def test_the_first_api_still_works() -> None:
    stream = DriftingStream("agrawal", drift_every=100, seed=1)
    concepts = [concept for concept, _, _ in stream.take(450)]
    assert _changes(concepts) == stream.drift_points(450) == [100, 200, 300, 400]
    with pytest.raises(SourceError, match="choose one of"):
        DriftingStream("nope")


def test_publish_stream_sends_each_sample_with_its_label() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"s.events": 1, "s.feedback": 1})
    samples = DriftingStream("sea", drift_every=50, seed=1).take(120)
    assert publish_stream(bus, "s", samples, batch=50) == 120
    with bus.assign([TopicPartition("s.events", 0), TopicPartition("s.feedback", 0)]) as reader:
        messages = reader.consume(max_records=1_000, timeout=0.1)
    events = [decode(m).payload for m in messages if m.topic == "s.events"]
    feedback = [decode(m).payload for m in messages if m.topic == "s.feedback"]
    assert len(events) == len(feedback) == 120
    assert [f.event_id for f in feedback if isinstance(f, Feedback)] == [
        e.id for e in events if isinstance(e, FeatureEvent)
    ]
