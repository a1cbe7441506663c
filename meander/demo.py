"""``meander demo``: a drifting stream through the bus, read back, bad messages dead-lettered.

It runs on whatever backends the settings name: the embedded ones by default, Kafka and Redis
with ``--kafka``. A few malformed messages are mixed in on purpose, to show that they reach the
dead-letter topic with their reason and that nothing stops.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson

from meander import topics
from meander.bus import Bus, Record, connect_bus
from meander.config import Settings, StreamConfig
from meander.deadletter import DeadLetters
from meander.events import FeatureEvent, decode_batch
from meander.store import open_store
from producers.synthetic import DriftingStream, publish_stream

__all__ = ["AGRAWAL", "malformed", "run_demo"]

AGRAWAL = StreamConfig(
    name="agrawal",
    task="binary",
    features={
        **dict.fromkeys(["salary", "commission", "age", "hvalue", "hyears", "loan"], "numeric"),
        **dict.fromkeys(["elevel", "car", "zipcode"], "categorical"),
    },
)


def malformed(topic: str) -> list[Record]:
    """Three messages a reader must reject, each for a different reason."""
    almost = (("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"/demo"))
    return [
        Record(topic, b"{not json", headers=(("ce_specversion", b"1.0"),)),
        Record(topic, b'{"features": {}}'),
        Record(
            topic,
            orjson.dumps({"id": "x", "features": {"age": [1, 2]}}),
            headers=(*almost, ("ce_type", FeatureEvent.type.encode())),
        ),
    ]


def run_demo(settings: Settings, *, events: int = 40_000, echo: bool = True) -> dict[str, int]:
    """Stream ``events`` samples through the bus and read them back; returns the counts."""
    stream = settings.streams[0] if settings.streams else AGRAWAL
    bus, store = connect_bus(settings), open_store(settings)
    bus.create_topics(topics.layout([stream]))
    backend = "Kafka + Redis" if settings.uses_kafka else "embedded bus and store"
    _say(echo, f"meander demo: {events} events of a drifting Agrawal stream on the {backend}")

    bad = malformed(topics.events(stream.name))
    writer = threading.Thread(target=_produce, args=(bus, stream.name, events, bad), daemon=True)
    started = time.monotonic()
    writer.start()
    counts = _read(bus, settings, stream.name, expected=events + len(bad), writer=writer, echo=echo)
    writer.join()
    elapsed = time.monotonic() - started
    counts["events_per_second"] = int(counts["read"] / elapsed)
    store.hset("meander:demo:last", mapping={k: str(v) for k, v in counts.items()})
    _say(
        echo,
        f"done: {counts['read']} events in {elapsed:.1f}s "
        f"({counts['events_per_second']}/s), {counts['dead_lettered']} dead-lettered",
    )
    bus.close()
    return counts


def _produce(bus: Bus, stream: str, events: int, bad: list[Record]) -> None:
    samples = DriftingStream("agrawal", drift_every=max(events // 4, 1), seed=42).take(events)
    bus.publish(bad)
    publish_stream(bus, stream, samples)


def _read(
    bus: Bus,
    settings: Settings,
    stream: str,
    *,
    expected: int,
    writer: threading.Thread,
    echo: bool,
) -> dict[str, int]:
    dead = DeadLetters(bus, component="demo")
    reasons: Counter[str] = Counter()
    last_report, read = time.monotonic(), 0
    with bus.subscribe([topics.events(stream)], group=f"meander-demo-{time.time_ns()}") as reader:
        while read < expected:
            batch = reader.consume(max_records=2_000, timeout=1.0)
            _, rejected = decode_batch(batch, max_bytes=settings.max_event_bytes)
            dead.send(rejected)
            reader.commit()
            reasons.update(reason.split(":")[0] for _, reason in rejected)
            read += len(batch)
            if not batch and not writer.is_alive():
                break  # the writer stopped early (its error is on stderr): report what arrived
            if time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                _say(echo, f"  read {read:>7} events, dead-lettered {dead.count}")
    for reason, count in reasons.items():
        _say(echo, f"  dead letter x{count}: {reason}")
    return {"read": read, "decoded": read - dead.count, "dead_lettered": dead.count}


def _say(echo: bool, line: str) -> None:
    if echo:
        print(line, flush=True)
