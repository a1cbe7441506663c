"""The broker's warm-up before the first run, and what the cold broker gave.

A freshly started broker is a JVM still compiling its hot paths: in the first run after a
start it spent 1,407 us of CPU per event at 1,000 events/s offered, against 1,034 and 1,067 in
the two runs after, and every latency part of that first run had a longer tail. A broker in
service has long been warm, so the runs are measured on a warm one: before the first run, the
traffic of the latency parts at their offered loads: a bare kafka-python loop :data:`ROUNDS`
times, then the kafka-python predictor once (``meander run predictor``: a consumer group that
commits, record batches written whole), about a minute and a half in all.

The predictor's round was added when run 1's predictor at 1,000/s kept a longer tail than
runs 2 and 3 (p99 34.8 against 19.9 and 19.3 ms), with the broker at 757 us of CPU per event
against 417 - 454: in that part of run 1 the broker's JIT compiler threads (C2) took 1.38 s of
its 2.79 s of CPU (read per thread, on a loaded machine), still compiling for what the
predictor's traffic asks of it after the bare loop's warm-up and run 1's throughput parts.
With the predictor's round (same machine, as loaded) they still took 1.19 s in that part: the
quiet runs in docs/benchmarks.md say whether the round is enough.

What a cold broker gives is not hidden: the measurement alone (the paced producer read back on
its own topic, no loop) is taken at 1,000 events/s before the warm-up and again after it, and
both are reported.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from benchmarks.hotpath import bare, latency
from benchmarks.hotpath.stage import Stage
from benchmarks.hotpath.summary import LOADS

__all__ = ["ROUNDS", "said", "warm_up"]

ROUNDS = 2  # of the bare kafka-python loop at every offered load, before the first run
RATE = 1_000.0  # events/s of the cold and warm measurements


def warm_up(stage: Stage, rounds: int = ROUNDS) -> dict[str, Any]:
    """Measure the cold broker, push ``rounds`` rounds of traffic through it, measure it again."""
    started = time.monotonic()
    (cold,) = bare.bare_latencies(stage, (RATE,), 3.0, 15.0, None)
    for _ in range(rounds):
        bare.bare_latencies(stage, LOADS, 3.0, 15.0, bare.copy_loop)
    stream = f"warm-up-{uuid.uuid4().hex[:6]}"
    stage.prepare(stream)
    latency.latencies(stage, stream, LOADS, 3.0, 15.0)
    (warm,) = bare.bare_latencies(stage, (RATE,), 3.0, 15.0, None)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "rounds": rounds,
        "cold": _brief(cold),
        "warm": _brief(warm),
    }


def _brief(found: dict[str, Any]) -> dict[str, Any]:
    keys = ("offered_per_second", "p50_ms", "p99_ms", "max_ms", "broker_cpu_us_per_event")
    return {key: found.get(key) for key in keys}


def said(warmed: dict[str, Any] | None) -> str:
    """One line for the output: how the broker was warmed, and cold against warm.

    >>> said(None)
    'broker not warmed up before run 1 (--warm-up 0): run 1 met it as it was'
    """
    if warmed is None:
        return "broker not warmed up before run 1 (--warm-up 0): run 1 met it as it was"
    cold, warm = warmed["cold"], warmed["warm"]
    return (
        f"broker warm-up before run 1 ({warmed['seconds']:g} s: a bare kafka-python loop at "
        f"{', '.join(f'{load:,.0f}' for load in LOADS)} events/s, {warmed['rounds']} times, "
        "then the kafka-python predictor once; every part of every run is measured after it). "
        "The measurement alone (no loop) at "
        f"{RATE:,.0f}/s: cold p50 {cold['p50_ms']} ms, p99 {cold['p99_ms']} ms, broker "
        f"{cold['broker_cpu_us_per_event']} us CPU per event; warmed p50 {warm['p50_ms']} ms, "
        f"p99 {warm['p99_ms']} ms, broker {warm['broker_cpu_us_per_event']} us"
    )
