"""The learner's pace: labels for the events the predictor scored, joined and learned per second.

The labels are published first; then ``meander run learner`` starts and joins them to the events
and predictions already on their topics. Its own Prometheus counters, scraped from its metrics
port, say how many it has joined (and how many it could not match) at each moment.

Two paces are given. ``feedback_per_second`` counts from the first join: the learner's first
step has by then read every event and prediction it joins the labels to (all of them, in a quick
run), so it is the pace of the labels alone. ``feedback_per_second_with_catch_up`` counts from
the moment its counters appear (it holds the stream and has resumed, before reading anything):
reading and decoding the events and predictions is part of the work, as the predictor's rate
counts reading its events.
"""

from __future__ import annotations

import re
import time
import urllib.request
from typing import Any

from benchmarks.hotpath.stage import Stage, stop
from meander.infra.process import free_port

__all__ = ["feedback", "scrape"]

_SAMPLE = re.compile(r'^(meander_feedback_\w+_total)\{stream="([^"]+)"\} ([0-9.e+]+)$', re.M)


def scrape(text: str, stream: str) -> dict[str, float]:
    """The ``meander_feedback_*_total`` counters of ``stream`` in a Prometheus text page.

    >>> scrape('meander_feedback_joined_total{stream="s"} 12.0\\n', "s")
    {'meander_feedback_joined_total': 12.0}
    """
    return {name: float(value) for name, of, value in _SAMPLE.findall(text) if of == stream}


def _counters(port: int, stream: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            return scrape(answer.read().decode(), stream)
    except OSError:
        return {}  # not serving yet


def feedback(
    stage: Stage,
    stream: str,
    labels: int,
    timeout: float = 900.0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Publish ``labels`` labels for events ``e0..`` and time the learner joining them
    (``env``: settings of its own, such as the Kafka client)."""
    stage.publish_feedback(stream, 0, labels)
    port = free_port()
    config = stage.config(stream, metrics_port=port)
    started = time.monotonic()
    learner = stage.spawn("learner", config, env)
    first: tuple[float, float] | None = None
    resumed: float | None = None
    try:
        while True:
            counters = _counters(port, stream)
            joined = counters.get("meander_feedback_joined_total", 0.0)
            unmatched = counters.get("meander_feedback_unmatched_total", 0.0)
            now = time.monotonic()
            if resumed is None and counters:
                resumed = now
            if first is None and joined > 0:
                first = (now, joined)
            if joined + unmatched >= labels:
                break
            if learner.poll() is not None:
                raise RuntimeError(
                    f"meander run learner exited ({learner.returncode}):\n"
                    + stage.log_of("learner", config)
                )
            if now - started > timeout:
                raise RuntimeError(f"the learner handled {joined:.0f} of {labels} in {timeout} s")
            time.sleep(0.05)  # a quick run's labels take about a second
    finally:
        stop(learner)
    assert first is not None and resumed is not None
    span, working = now - first[0], now - resumed
    return {
        "labels": labels,
        "joined": int(joined),
        "unmatched": int(unmatched),
        "seconds_from_start": round(now - started, 2),
        "seconds_from_first_join": round(span, 2),
        "feedback_per_second": round((joined - first[1]) / span) if span > 0 else None,
        "seconds_from_resume": round(working, 2),
        "feedback_per_second_with_catch_up": round(joined / working) if working > 0 else None,
    }
