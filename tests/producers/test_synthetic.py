"""Synthetic drifting streams: drift where it is said to be, and the same stream for a seed."""

from __future__ import annotations

import pytest

from producers.synthetic import DriftingStream


def test_concepts_change_exactly_at_the_drift_points() -> None:
    stream = DriftingStream("agrawal", drift_every=100, seed=1)
    concepts = [concept for concept, _, _ in stream.take(450)]
    changes = [i for i in range(1, 450) if concepts[i] != concepts[i - 1]]
    assert changes == stream.drift_points(450) == [100, 200, 300, 400]
    assert concepts[0] == 0 and concepts[-1] == 0  # cycles back to the first concept


def test_the_same_seed_gives_the_same_stream() -> None:
    first = list(DriftingStream("sea", drift_every=50, seed=3).take(120))
    second = list(DriftingStream("sea", drift_every=50, seed=3).take(120))
    other = list(DriftingStream("sea", drift_every=50, seed=4).take(120))
    assert first == second != other


def test_labels_follow_the_concept() -> None:
    # SEA's variants use different thresholds: the same points get other labels after a drift.
    samples = list(DriftingStream("sea", drift_every=2_000, seed=5).take(4_000))
    rate = [sum(label for _, _, label in samples[i : i + 2_000]) / 2_000 for i in (0, 2_000)]
    assert abs(rate[0] - rate[1]) > 0.02


def test_unknown_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        DriftingStream("nope")
