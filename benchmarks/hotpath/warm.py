"""The broker's warm-up before the first run, and what the cold broker gave.

A freshly started broker is a JVM still compiling its hot paths: in the first run after a
start it spent 1,407 us of CPU per event at 1,000 events/s offered, against 1,034 and 1,067 in
the two runs after, and every latency part of that first run had a longer tail. A broker in
service has long been warm, so the runs are measured on a warm one: before the first run,
:data:`ROUNDS` whole runs of every part (throughput, exactly once, learner, every latency part
and reference loop) on :data:`EVENTS` events each, their figures not kept.

A whole run, because less was not enough: with two rounds of a bare kafka-python loop and one
of the kafka-python predictor at the latency parts' loads, run 1's predictor at 1,000/s still
had p99 74.5 ms (18.5 and 20 in runs 2 and 3) with the broker at 700 us of CPU per event
against 394 - 414, its JIT compiler threads (C2) still busy in that part (1.19 of 3.20 s, read
per thread on a loaded machine), presumably for traffic run 1 asked of it first (transactions,
the learner's reads, whole batches of the throughput parts).

What a cold broker gives is not hidden: the measurement alone (the paced producer read back on
its own topic, no loop) is taken at 1,000 events/s before the warm-up and again after it, and
both are reported.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

from benchmarks.hotpath import bare
from benchmarks.hotpath.stage import Stage

__all__ = ["EVENTS", "ROUNDS", "said", "warm_up"]

ROUNDS = 1  # whole runs before the first measured one
EVENTS = 5_000  # events of a warm-up run's throughput and learner parts
RATE = 1_000.0  # events/s of the cold and warm measurements


def warm_up(stage: Stage, rounds: int, whole_run: Callable[[], object]) -> dict[str, Any]:
    """Measure the cold broker, make ``rounds`` whole runs (``whole_run()``, its output not
    shown), measure the broker again."""
    started = time.monotonic()
    (cold,) = bare.bare_latencies(stage, (RATE,), 3.0, 15.0, None)
    for _ in range(rounds):
        with redirect_stdout(io.StringIO()):
            whole_run()
    (warm,) = bare.bare_latencies(stage, (RATE,), 3.0, 15.0, None)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "rounds": rounds,
        "events": EVENTS,
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
    >>> brief = {"p50_ms": 0.4, "p99_ms": 4.0, "broker_cpu_us_per_event": 310.0}
    >>> said({"seconds": 130.5, "rounds": 1, "cold": brief, "warm": brief})[:68]
    'broker warm-up before run 1 (130.5 s: a whole run of every part on 5'
    """
    if warmed is None:
        return "broker not warmed up before run 1 (--warm-up 0): run 1 met it as it was"
    cold, warm = warmed["cold"], warmed["warm"]
    runs = "a whole run" if warmed["rounds"] == 1 else f"{warmed['rounds']} whole runs"
    return (
        f"broker warm-up before run 1 ({warmed['seconds']:g} s: {runs} of every part on "
        f"{warmed.get('events', EVENTS):,} events, not kept; every part of every run is "
        "measured after it). "
        "The measurement alone (no loop) at "
        f"{RATE:,.0f}/s: cold p50 {cold['p50_ms']} ms, p99 {cold['p99_ms']} ms, broker "
        f"{cold['broker_cpu_us_per_event']} us CPU per event; warmed p50 {warm['p50_ms']} ms, "
        f"p99 {warm['p99_ms']} ms, broker {warm['broker_cpu_us_per_event']} us"
    )
