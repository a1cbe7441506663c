"""Resident memory of the predictor process over a long run, sampled once a second.

Events are published by another process while ``meander run predictor`` scores them, so the run
takes as long as the slower of the two; the predictor's RSS is read from ``/proc/PID/status``.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from benchmarks.hotpath.stage import Stage, count, stop
from benchmarks.hotpath.stats import read_rss_kib
from meander import topics

__all__ = ["resident_memory"]


def _publish(stage: Stage, stream: str, events: int) -> None:
    stage.publish_events(stream, 0, events)


def resident_memory(
    stage: Stage,
    stream: str,
    events: int,
    timeout: float = 3_600.0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """RSS samples (MiB, one a second) of the predictor while it scores ``events`` events
    (``env``: settings of its own, such as the Kafka client)."""
    config = stage.config(stream)
    context = multiprocessing.get_context("spawn")
    publisher = context.Process(target=_publish, args=(stage, stream, events))
    publisher.start()
    predictor = stage.spawn("predictor", config, env)
    peeker = stage.peeker()
    started = time.monotonic()
    series: list[tuple[float, int, float]] = []
    try:
        while True:
            scored = count(peeker, topics.predictions(stream))
            if predictor.poll() is not None:
                raise RuntimeError("the predictor exited:\n" + stage.log_of("predictor", config))
            elapsed = time.monotonic() - started
            series.append((round(elapsed, 1), scored, round(read_rss_kib(predictor.pid) / 1024, 1)))
            if scored >= events:
                break
            if elapsed > timeout:
                raise RuntimeError(f"the predictor scored {scored} of {events} in {timeout} s")
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started - elapsed)))
    finally:
        peeker.close()
        stop(predictor)
        publisher.join(60)
    warm = next((s for s in series if s[1] >= min(50_000, events // 10)), series[-1])
    return {
        "events": events,
        "seconds": series[-1][0],
        "warm_up_rss_mib": warm[2],
        "end_rss_mib": series[-1][2],
        "peak_rss_mib": max(s[2] for s in series),
        "growth_after_warm_up_mib": round(series[-1][2] - warm[2], 1),
        "series": [{"seconds": s[0], "predictions": s[1], "rss_mib": s[2]} for s in series],
    }
