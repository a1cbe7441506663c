"""The window statistics agree with scipy and with the textbook formulas."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from meander.consumers.monitor.profile import (
    KEPT_CATEGORIES,
    PSI_EPSILON,
    QUANTILES,
    RunningCategories,
    RunningNumbers,
    category_summary,
    change_point,
    ks_critical_value,
    ks_statistic,
    log_ratios,
    numeric_summary,
    psi,
    ranks,
)


@pytest.mark.parametrize(("n", "m", "shift"), [(1_000, 1_000, 0.0), (300, 700, 0.4), (50, 20, 1.0)])
def test_ks_statistic_is_scipys(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n + m)
    reference, window = np.sort(rng.normal(0, 1, n)), np.sort(rng.normal(shift, 1, m))
    assert ks_statistic(reference, window) == pytest.approx(
        stats.ks_2samp(reference, window).statistic, abs=1e-12
    )


def test_ks_statistic_handles_ties() -> None:
    reference = np.array([1.0, 1.0, 2.0, 2.0])
    window = np.array([1.0, 2.0, 2.0, 2.0])
    assert ks_statistic(reference, window) == stats.ks_2samp(reference, window).statistic == 0.25


@pytest.mark.parametrize("significance", [0.05, 1e-3, 1e-4])
def test_ks_critical_value_has_the_asymptotic_p_value(significance: float) -> None:
    critical = ks_critical_value(800, 1_200, significance)
    n_effective = 800 * 1_200 / 2_000
    assert stats.kstwobign.sf(critical * math.sqrt(n_effective)) == pytest.approx(
        significance, rel=1e-3
    )


def test_psi_matches_the_formula_and_guards_unseen_categories() -> None:
    reference, window = {"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20}
    expected = (
        (0.3 - 0.6) * math.log(0.3 / 0.6)
        + (0.5 - 0.4) * math.log(0.5 / 0.4)
        + (0.2 - PSI_EPSILON) * math.log(0.2 / PSI_EPSILON)
    )
    assert psi(reference, window) == pytest.approx(expected)
    assert psi(window, reference) > 0
    assert psi(reference, reference) == 0.0


def test_summaries_of_an_empty_window() -> None:
    assert numeric_summary(np.array([]), missing=0) == {"count": 0, "missing_rate": 0.0}
    assert category_summary(Counter(), missing=3) == {
        "count": 0,
        "missing_rate": 1.0,
        "categories": {},
    }


def test_category_summary_keeps_the_most_frequent() -> None:
    counts = Counter({f"c{i}": i for i in range(1, 80)})
    categories = category_summary(counts, missing=0)["categories"]
    assert len(categories) == 50
    assert next(iter(categories)) == "c79"


@pytest.mark.parametrize(("at", "found"), [(30, 30), (250, 250), (350, 328)])
def test_change_point_finds_a_shift_in_ranks_and_ignores_noise(at: int, found: int) -> None:
    rng = np.random.default_rng(at)
    reference = np.sort(rng.normal(0, 1, 500))
    window = np.concatenate((rng.normal(0, 1, at), rng.normal(1.5, 1, 500 - at)))
    assert change_point(ranks(reference, window)) == found  # late changes are placed early
    assert change_point(ranks(reference, rng.normal(0, 1, 500))) == 0
    assert change_point(ranks(reference, rng.normal(1.5, 1, 500))) == 0  # shifted throughout


def test_change_point_of_categories_scored_by_their_log_ratio() -> None:
    rng = np.random.default_rng(5)
    before = rng.choice(["a", "b", "c"], 200, p=[0.6, 0.3, 0.1]).tolist()
    after = rng.choice(["a", "b", "c"], 300, p=[0.2, 0.3, 0.5]).tolist()
    reference = Counter(rng.choice(["a", "b", "c"], 500, p=[0.6, 0.3, 0.1]).tolist())
    ratio = log_ratios(reference, Counter(before + after))
    assert change_point(np.array([ratio[c] for c in before + after])) == 208


def test_running_numbers_agree_with_numpy_over_all_windows() -> None:
    rng = np.random.default_rng(11)
    windows = [rng.gamma(2.0 + i % 2, 1.0, 1_000) for i in range(20)]
    running = RunningNumbers()
    for window in windows:
        running.update(window, missing=10)
    values = np.concatenate(windows)
    summary = running.summary()
    assert (summary["count"], summary["missing"]) == (20_000, 200)
    assert summary["missing_rate"] == pytest.approx(200 / 20_200)
    assert summary["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert summary["variance"] == pytest.approx(values.var(ddof=1), rel=1e-9)
    assert (summary["min"], summary["max"]) == (values.min(), values.max())
    assert list(summary["quantiles"]) == list(QUANTILES)
    # Estimated from a sample of each window; P-square tracks a stationary stream well (not a
    # trending one: its estimates move at most one step per value).
    for name, q in QUANTILES.items():
        assert summary["quantiles"][name] == pytest.approx(np.quantile(values, q), rel=0.1)


def test_running_numbers_before_any_value_has_only_counts() -> None:
    running = RunningNumbers()
    running.update(np.array([]), missing=4)
    assert running.summary() == {"count": 0, "missing": 4, "missing_rate": 1.0}
    running.update(np.array([2.5]), missing=0)
    assert running.summary()["variance"] == 0.0


def test_running_categories_add_up_and_forget_only_the_rarest() -> None:
    running = RunningCategories()
    running.update(Counter({True: 3, False: 1}), missing=1)
    running.update(Counter({True: 1}), missing=0)
    assert running.summary() == {
        "count": 5,
        "missing": 1,
        "missing_rate": pytest.approx(1 / 6),
        "top": {"true": 4, "false": 1},
    }
    many = RunningCategories()
    many.update(Counter({"common": 10_000}), missing=0)
    many.update(Counter({f"id{i}": 1 for i in range(2 * KEPT_CATEGORIES + 1)}), missing=0)
    assert len(many.counts) == KEPT_CATEGORIES
    assert many.summary()["top"]["common"] == 10_000
