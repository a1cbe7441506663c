"""The bus round trip: encode events as CloudEvents, publish, consume, decode.

Runs on the embedded bus and on a real Kafka broker (MEANDER_KAFKA_BOOTSTRAP, or one started
here), and writes events per second for each to artifacts/bench/bus.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from meander.bus import Bus, MemoryBroker, MemoryBus
from meander.bus.kafka import KafkaBus
from meander.events import FeatureEvent, decode_batch, encode
from meander.infra.kafka import LocalKafka

OUT = Path("artifacts/bench/bus.json")


def round_trip(bus: Bus, events: int, batch: int = 1_000) -> dict[str, float]:
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    bus.create_topics({topic: 3})
    features = {f"f{i}": float(i) for i in range(10)}
    started = time.perf_counter()
    for start in range(0, events, batch):
        count = min(batch, events - start)
        bus.publish(
            [encode(topic, FeatureEvent(features=features), source="/bench") for _ in range(count)]
        )
    published = time.perf_counter()
    decoded = 0
    with bus.subscribe([topic], group=f"bench-{uuid.uuid4().hex[:8]}") as reader:
        while decoded < events:
            ok, rejected = decode_batch(reader.consume(max_records=5_000, timeout=1.0))
            assert not rejected, rejected[:1]
            decoded += len(ok)
    done = time.perf_counter()
    return {
        "events": events,
        "encode_publish_per_second": round(events / (published - started)),
        "consume_decode_per_second": round(events / (done - published)),
    }


def main(events: int) -> None:
    results: dict[str, object] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    results["embedded"] = round_trip(MemoryBus(MemoryBroker(), max_message_bytes=10**6), events)
    with ExitStack() as stack:
        bootstrap = os.environ.get("MEANDER_KAFKA_BOOTSTRAP")
        if bootstrap is None:
            bootstrap = stack.enter_context(LocalKafka()).bootstrap
        results["kafka"] = round_trip(stack.enter_context(KafkaBus(bootstrap)), events)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {OUT} (command: make bench, or python -m benchmarks --events {events})")
