"""The hot-path benchmark's pure helpers: percentiles, rates, RSS parsing, pacing, scraping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.hotpath import report
from benchmarks.hotpath.learner import scrape
from benchmarks.hotpath.machine import busy_cores, busy_share, cpu_times, sampled
from benchmarks.hotpath.stage import samples
from benchmarks.hotpath.stats import (
    Pacer,
    percentiles,
    rate,
    read_rss_kib,
    rss_kib,
    slow_spells,
    spread,
)
from benchmarks.hotpath.summary import summary


def test_percentiles_interpolate_and_refuse_an_empty_sample() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50_ms": 50.5, "p95_ms": 95.05, "p99_ms": 99.01}
    with pytest.raises(ValueError, match="no latencies"):
        percentiles([])


def test_slow_answers_are_grouped_into_spells_and_the_biggest_kept_in_time_order() -> None:
    stall = [(1.0 + i * 0.001, 60.0 + i) for i in range(30)]  # one stall: 30 slow answers
    spread_out = [(2.0 + i * 0.5, 30.0) for i in range(4)]  # four slow answers, far apart
    fast = [(0.5, 3.0), (1.5, 4.0)]
    spells = slow_spells(sorted(fast + stall + spread_out), 25.0, most=3)
    assert spells == [
        {"at_s": 1.0, "answers": 30, "max_ms": 89.0},
        {"at_s": 2.0, "answers": 1, "max_ms": 30.0},
        {"at_s": 2.5, "answers": 1, "max_ms": 30.0},
    ]
    assert slow_spells(fast, 25.0) == []


def test_rate_divides_and_refuses_an_empty_span() -> None:
    assert rate(3_000, 1.5) == 2_000.0
    with pytest.raises(ValueError, match="must be > 0"):
        rate(10, 0.0)


def test_rss_is_read_from_a_status_text_and_from_this_process() -> None:
    status = "Name:\tpython\nVmHWM:\t  900 kB\nVmRSS:\t  812 kB\nRssAnon:\t 700 kB\n"
    assert rss_kib(status) == 812
    with pytest.raises(ValueError, match="VmRSS"):
        rss_kib("Name:\tzombie\n")
    assert read_rss_kib(os.getpid()) > 1_000  # a Python interpreter holds more than 1 MiB


def test_pacer_counts_what_is_due_since_the_start() -> None:
    pacer = Pacer(2_000.0, started=10.0)
    assert pacer.due(now=10.0) == 0
    assert pacer.due(now=10.5) == 1_000
    pacer.sent(1_200)  # ahead of schedule: nothing more is due until the schedule catches up
    assert pacer.due(now=10.5) == 0
    assert pacer.due(now=11.0) == 800
    with pytest.raises(ValueError, match="positive"):
        Pacer(0.0)


def test_samples_are_reproducible_and_cross_chunks_seamlessly() -> None:
    whole = [(first, x, y) for first, x, y in samples(9_990, 30)]
    assert [(first, len(x)) for first, x, _ in whole] == [(9_990, 10), (10_000, 20)]
    again = list(samples(10_000, 5))
    assert (again[0][1] == whole[1][1][:5]).all()
    assert (again[0][2] == whole[1][2][:5]).all()


def test_scrape_reads_one_streams_feedback_counters() -> None:
    page = (
        "# HELP meander_feedback_joined_total Labels joined\n"
        'meander_feedback_joined_total{stream="a"} 1500.0\n'
        'meander_feedback_joined_total{stream="b"} 7.0\n'
        'meander_feedback_unmatched_total{stream="a"} 3.0\n'
    )
    assert scrape(page, "a") == {
        "meander_feedback_joined_total": 1500.0,
        "meander_feedback_unmatched_total": 3.0,
    }


def test_spread_gives_least_median_greatest_and_keeps_missing_runs() -> None:
    assert spread([3.0, None, 1.0, 2.0]) == {
        "values": [3.0, None, 1.0, 2.0],
        "min": 1.0,
        "median": 2.0,
        "max": 3.0,
    }
    assert spread([None])["median"] is None


def test_summary_collects_each_figure_and_each_loads_latency_over_the_runs() -> None:
    runs = [
        {
            "throughput": {"meander": {"events_per_second": rate_}},
            "latency": [{"offered_per_second": 1_000.0, "p99_ms": p99}],
            "latency_bare": [{"offered_per_second": 1_000.0, "p99_ms": p99 / 2}],
        }
        for rate_, p99 in ((9_000, 20.0), (8_000, 30.0), (10_000, 10.0))
    ]
    found = summary(runs)
    assert found["meander events/s"]["median"] == 9_000.0
    assert found["p99_ms at 1,000/s"] == {
        "values": [20.0, 30.0, 10.0],
        "min": 10.0,
        "median": 20.0,
        "max": 30.0,
    }
    assert found["bare loop p99_ms at 1,000/s"]["values"] == [10.0, 15.0, 5.0]
    assert "learner labels/s" not in found  # no run measured it


def test_cpu_busy_share_is_read_from_proc_stat() -> None:
    stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n"
    assert cpu_times(stat) == (150, 1000)
    assert busy_share((150, 1000), (250, 1200)) == 0.5
    assert busy_share((150, 1000), (150, 1000)) is None


def test_busy_cores_counts_the_intervals_in_which_every_core_was_busy() -> None:
    readings = [(0, 0), (19, 20), (29, 40), (49, 60), (49, 60)]  # the last: no time passed
    assert busy_cores(readings, cpus=2) == {"machine_busy_cores": 1.63, "machine_full_share": 0.67}
    assert busy_cores([(5, 10)], cpus=2)["machine_busy_cores"] is None
    found: dict[str, float | None] = {}
    with sampled(found, every=0.01):
        sum(range(200_000))
    assert 0 <= (found["machine_busy_cores"] or 0) <= (os.cpu_count() or 1)


def test_a_run_that_failed_before_its_latency_is_plotted_without_it(tmp_path: Path) -> None:
    # Log scales over no positive value used to raise and hide the run's own failure.
    whole = {"offered_per_second": 1_000.0, "p50_ms": 5.0, "p99_ms": 20.0}
    runs = [
        {"run": 1, "latency": [whole], "latency_bare": [whole]},
        {"run": 2, "failed": "ValueError: no latencies were measured"},
    ]
    for shown in (runs, runs[1:]):
        path = tmp_path / f"{len(shown)}.png"
        report.plot({"runs": shown, "summary": {}, "events": 10}, path)
        assert path.stat().st_size > 0
