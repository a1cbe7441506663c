"""Each figure of the hot-path benchmark over its runs: the values, least, median, greatest.

>>> runs = [{"throughput": {"meander": {"events_per_second": v}}} for v in (3, 1, 2)]
>>> summary(runs)["meander events/s"]["median"]
2.0
"""

from __future__ import annotations

from typing import Any

from benchmarks.hotpath.stats import spread

__all__ = ["FIGURES", "LOADS", "PARTS", "say_summary", "summary"]

LOADS = (1_000.0, 5_000.0, 20_000.0)
# The latency parts measured beside the predictor's, by the name their figures go under.
PARTS = {
    "latency_fast": "predictor on confluent-kafka",
    "latency_bare": "bare loop",
    "latency_confluent": "confluent-kafka loop",
    "latency_direct": "no loop (the measurement's own)",
}

FIGURES: dict[str, tuple[str | int, ...]] = {
    "ceiling events/s": ("throughput", "ceiling", "events_per_second"),
    "naive events/s": ("throughput", "naive", "events_per_second"),
    "meander events/s": ("throughput", "meander", "events_per_second"),
    "meander / naive": ("throughput", "meander_over_naive"),
    "meander / ceiling": ("throughput", "meander_over_ceiling"),
    "meander exactly-once events/s": ("throughput", "meander_exactly_once", "events_per_second"),
    "exactly-once / at-least-once": ("throughput", "exactly_once_over_at_least_once"),
    "meander on confluent-kafka events/s": ("throughput", "meander_fast", "events_per_second"),
    "meander on confluent-kafka / naive": ("throughput", "meander_fast_over_naive"),
    "meander on confluent-kafka / ceiling": ("throughput", "meander_fast_over_ceiling"),
    "meander on confluent-kafka exactly-once events/s": (
        "throughput",
        "meander_fast_exactly_once",
        "events_per_second",
    ),
    "exactly-once / at-least-once on confluent-kafka": (
        "throughput",
        "fast_exactly_once_over_at_least_once",
    ),
    "learner labels/s": ("learner", "feedback_per_second"),
    "learner / predictor": ("learner", "over_predictor"),
    "learner labels/s, with its catch-up": ("learner", "feedback_per_second_with_catch_up"),
    "learner with its catch-up / predictor": ("learner", "with_catch_up_over_predictor"),
    "learner on confluent-kafka labels/s": ("learner_fast", "feedback_per_second"),
    "learner on confluent-kafka / its predictor": ("learner_fast", "over_predictor"),
    "learner on confluent-kafka with its catch-up / its predictor": (
        "learner_fast",
        "with_catch_up_over_predictor",
    ),
    "predictor RSS growth after warm-up (MiB)": ("memory", "growth_after_warm_up_mib"),
    "predictor on confluent-kafka RSS growth after warm-up (MiB)": (
        "memory_fast",
        "growth_after_warm_up_mib",
    ),
    "load average before": ("load_before", 0),
    "CPUs busy": ("cpu_busy_share",),
}


_MEASUREMENT_CPU = (
    "producer_cpu_us_per_event",
    "reader_cpu_us_per_event",
    "broker_cpu_us_per_event",
    "machine_busy_cores",
    "machine_full_share",
)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's values over the runs, with their least, median and greatest."""
    found: dict[str, Any] = {}
    for name, path in FIGURES.items():
        values = [_at(run, path) for run in runs]
        if any(v is not None for v in values):
            found[name] = spread(values)
    for load in LOADS:
        for q in (
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "missing_after_drain",
            "predictor_cpu_us_per_event",
            *_MEASUREMENT_CPU,
        ):
            values = [_latency(run, load, q) for run in runs]
            if any(v is not None for v in values):
                found[f"{q} at {load:,.0f}/s"] = spread(values)
        for part, name in PARTS.items():
            for q in (
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "missing_after_drain",
                "loop_cpu_us_per_event",
                "predictor_cpu_us_per_event",
                *_MEASUREMENT_CPU,
            ):
                values = [_latency(run, load, q, part) for run in runs]
                if any(v is not None for v in values):
                    found[f"{name} {q} at {load:,.0f}/s"] = spread(values)
    return found


def _at(run: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    value: Any = run
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _latency(run: dict[str, Any], load: float, q: str, part: str = "latency") -> Any:
    for found in run.get(part, []):
        if found["offered_per_second"] == load:
            return found.get(q)
    return None


def say_summary(found: dict[str, Any], command: str) -> None:
    print(f"over {len(next(iter(found.values()))['values']) if found else 0} run(s):")
    for name, values in found.items():
        shown = ", ".join("-" if v is None else f"{v:,}" for v in values["values"])
        print(f"    {name}: median {values['median']:,} (runs: {shown})")
    print(f"    reproduce: {command}", flush=True)
