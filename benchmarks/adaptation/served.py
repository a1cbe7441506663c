"""The loop on a stream of the suite: what it served, how fast, and what it noticed.

meander's whole loop (producer records, predictor, learner, trainer) runs on the embedded bus
and store, with the defaults a user gets from ``meander backtest FILE --target y``: the stream
says only its task and its features' types. Events go in chunks of 100; each chunk is scored
before its labels are published, as a deployment whose labels come back a chunk later would
see it. The score is that of the predictions the loop served; drift alerts and promotions are
read back from the topics, and matched against the stream's true changes.

>>> from benchmarks.adaptation.streams import build
>>> result = run(build("sea_abrupt", events=400))
>>> result["events"], 0.5 < result["score"] <= 1.0
(400, True)
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.adaptation.streams import BenchStream
from benchmarks.loop import CHUNK, detection, embedded, story
from meander.config import StreamConfig
from meander.consumers.loop import Loop, TickClock
from meander.producers.labels import Publisher

__all__ = ["CHUNK", "detection", "run"]


def run(bench: BenchStream, **options: Any) -> dict[str, Any]:
    """The loop over ``bench``; ``options`` add to its StreamConfig (none: the defaults)."""
    config = StreamConfig(
        name=bench.key,
        task=bench.task,
        features=bench.features,
        **options,  # type: ignore[arg-type]
    )
    # The learner's lease is wall time: a process starved of CPU by a loaded machine would lose
    # it mid-run. It does not change what the loop learns or serves.
    learning = config.learning.model_copy(update={"lease_seconds": 3_600.0})
    config = config.model_copy(update={"learning": learning})
    runtime = embedded(config)
    loop = Loop(runtime, config, monitor=False)
    publisher = Publisher(config.name)
    clock = TickClock()  # record times by publishing order: the same run every time
    samples = bench.samples
    started = time.process_time()  # CPU time: the machine is shared
    for start in range(0, len(samples), CHUNK):
        events, labels = publisher.push(samples[start : start + CHUNK])
        loop.feed(clock.stamp(events), clock.stamp(labels))
    loop.feed([], clock.stamp(publisher.flush()))
    seconds = max(time.process_time() - started, 1e-9)
    state = loop.learner.state
    assert state is not None
    served = state.served["champion"].report()
    drifts, promotions = story(runtime, config.name)
    champion = loop.learner.registry.get(state.champion).spec
    versions = len(loop.learner.registry.versions())
    loop.close()
    runtime.close()
    return {
        "score": round(served["mae" if bench.task == "regression" else "accuracy"], 4),
        "events": len(samples),
        "events_per_second": round(len(samples) / seconds),
        "drifts": drifts,
        "promotions": promotions,
        "versions": versions,
        "champion": champion,
    } | detection(drifts, bench.drifts)
