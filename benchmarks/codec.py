"""The event codec and the embedded bus, per record: what the closed loop pays for each event.

Measures, in microseconds per record over a seeded Agrawal stream (9 features): encoding each
payload type including building the payload as a caller does, decoding each, and publishing to /
consuming from the embedded bus in batches of 500. Each figure is the CPU time of this process,
best of a few repeats, so that other work on a shared machine counts as little as it can. The
benchmark's own inputs (20,000 prepared messages, say) are frozen out of the garbage collector
while it measures: what the code allocates is collected as usual, but a full collection does not
also walk a heap that only the benchmark holds. Writes artifacts/bench/codec.json.

    python -m benchmarks.codec --events 20000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from river.datasets import synth

from meander.bus import MemoryBroker, MemoryBus, Message, Record, TopicPartition
from meander.events import (
    FeatureEvent,
    Feedback,
    Payload,
    Prediction,
    decode_batch,
    encode,
    new_id,
)

OUT = Path("artifacts/bench/codec.json")
BATCH = 500
SOURCE = "/meander/bench"
SUBJECT = "agrawal"
# What the closed loop can afford per record and step: it must pass 6,000 events/s on 2 cores,
# and River's learning takes most of that.
TARGETS_US = {"encode": 8.0, "decode": 8.0, "publish": 4.0}

Sample = tuple[dict[str, Any], Any, str]  # features, label, event id


def samples(events: int, seed: int = 42) -> list[Sample]:
    return [(x, y, new_id()) for x, y in synth.Agrawal(seed=seed).take(events)]


@contextmanager
def inputs_apart() -> Iterator[None]:
    """What exists now stays out of the collector's way until the block ends."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def best_us(run: Callable[[], int], repeats: int) -> float:
    """The fastest of ``repeats`` runs, in microseconds per record ``run`` reports handling."""
    best = float("inf")
    with inputs_apart():
        for _ in range(repeats):
            started = time.process_time()
            count = run()
            best = min(best, (time.process_time() - started) / count)
    return round(best * 1e6, 2)


def batches(data: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``data`` in batches as the loop handles it, so that no more is alive than there would be."""
    for start in range(0, len(data), BATCH):
        yield data[start : start + BATCH]


# What the producer, the predictor and the labeller build for each sample.
def feature_events(chunk: Sequence[Sample]) -> list[Payload]:
    return [FeatureEvent(features=x) for x, _, _ in chunk]


def predictions(chunk: Sequence[Sample]) -> list[Payload]:
    moment = datetime.now(UTC)
    return [
        Prediction(
            event_id=event_id,
            model="agrawal",
            version=1,
            prediction=y,
            probabilities={"0": 0.25, "1": 0.75},
            latency_ms=0.4,
            event_time=moment,
        )
        for _, y, event_id in chunk
    ]


def feedback(chunk: Sequence[Sample]) -> list[Payload]:
    return [Feedback(event_id=event_id, label=y) for _, y, event_id in chunk]


BUILDERS: dict[str, Callable[[Sequence[Sample]], list[Payload]]] = {
    "feature_event": feature_events,
    "prediction": predictions,
    "feedback": feedback,
}


def as_message(record: Record, offset: int) -> Message:
    return Message(
        record.topic, 0, offset, record.key, record.value, record.headers, record.timestamp_ms
    )


def codec(data: Sequence[Sample], repeats: int) -> dict[str, dict[str, float]]:
    """Per payload type: encode (building the payload included) and decode, in µs per record."""
    figures: dict[str, dict[str, float]] = {}
    for name, build in BUILDERS.items():

        def encode_all(build: Callable[[Sequence[Sample]], list[Payload]] = build) -> int:
            for chunk in batches(data):
                [encode("bench.t", p, source=SOURCE, subject=SUBJECT) for p in build(chunk)]
            return len(data)

        messages = [
            as_message(encode("bench.t", p, source=SOURCE, subject=SUBJECT), i)
            for i, p in enumerate(build(data))
        ]

        def decode_all(messages: list[Message] = messages) -> int:
            for chunk in batches(messages):
                _, rejected = decode_batch(list(chunk))
                assert not rejected, rejected[:1]
            return len(messages)

        figures[name] = {
            "encode_us": best_us(encode_all, repeats),
            "decode_us": best_us(decode_all, repeats),
        }
    return figures


def memory_bus(data: Sequence[Sample], repeats: int) -> dict[str, float]:
    """Publishing keyed records to a 3-partition embedded topic, and consuming them back."""
    # Keyed by unique event ids, as S.events is.
    records = [encode("bench.events", p, source=SOURCE) for p in feature_events(data)]
    publish_best = consume_best = float("inf")
    for _ in range(repeats):
        bus = MemoryBus(MemoryBroker())
        bus.create_topics({"bench.events": 3})
        with inputs_apart():
            started = time.process_time()
            for batch in batches(records):
                bus.publish(batch)
            publish_best = min(publish_best, (time.process_time() - started) / len(records))
        reader = bus.assign([TopicPartition("bench.events", p) for p in range(3)])
        with inputs_apart():
            started = time.process_time()
            read = 0
            while read < len(records):
                read += len(reader.consume(max_records=BATCH, timeout=0))
            consume_best = min(consume_best, (time.process_time() - started) / read)
        reader.close()
    return {
        "publish_us": round(publish_best * 1e6, 2),
        "consume_us": round(consume_best * 1e6, 2),
    }


def main(events: int, repeats: int = 3) -> dict[str, Any]:
    """Measure, write artifacts/bench/codec.json and return the figures."""
    data = samples(events)
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "events": events,
        "repeats": repeats,
        "unit": "microseconds of CPU per record, best of repeats, inputs frozen out of the GC",
        "codec": codec(data, repeats),
        "memory_bus": memory_bus(data, repeats),
        "targets_us": TARGETS_US,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {OUT} (command: python -m benchmarks.codec --events {events})")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.codec")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    main(arguments.events, arguments.repeats)
