"""End-to-end latency: from an event's publication to its prediction being readable.

A paced producer (its own process, so its sends do not wait on this one's reads) offers events
at a fixed rate, each stamped with its publication time as the event time. Here, a consumer in
no group reads ``S.predictions`` from its end and takes ``now - event_time`` of each prediction.
The predictor runs throughout, as ``meander run predictor`` in its own process.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from benchmarks.hotpath.stage import FEATURES, Stage, partitions_of, samples, stop
from benchmarks.hotpath.stats import Pacer, percentiles, read_cpu_seconds
from meander import topics

__all__ = ["latencies", "offer"]

_HEADERS = (
    ("ce_specversion", b"1.0"),
    ("ce_source", b"/bench/hotpath/latency"),
    ("ce_type", b"io.meander.event.v1"),
    ("content-type", b"application/json"),
)


def offer(
    bootstrap: str, topic: str, tag: str, per_second: float, seconds: float, out: Queue[Any]
) -> None:
    """Publish ``{tag}-0..`` at ``per_second`` for ``seconds``; put (sent, elapsed) on ``out``.

    Records are built by hand rather than through pydantic so that building them does not
    limit the rate offered; they are the bytes ``meander.events.encode`` writes.
    """
    rows = [
        orjson.dumps(dict(zip(FEATURES, x, strict=True)))
        for _, chunk, _ in samples(0, 2_000)
        for x in chunk.tolist()
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks=1)
    pacer = Pacer(per_second)
    end = pacer.started + seconds
    sent = 0
    while (now := time.perf_counter()) < end:
        due = pacer.due(now)
        if not due:
            time.sleep(0.0005)
            continue
        moment = datetime.now(UTC)
        stamp = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
        header_time = ("ce_time", (stamp[:23] + "Z").encode())
        for _ in range(due):
            event_id = f"{tag}-{sent}"
            value = b'{"id":"%s","time":"%s","features":%s,"entity":null}' % (
                event_id.encode(),
                stamp.encode(),
                rows[sent % len(rows)],
            )
            headers = [*_HEADERS, ("ce_id", event_id.encode()), header_time]
            producer.send(topic, value=value, key=event_id.encode(), headers=headers)
            sent += 1
        pacer.sent(due)
    producer.flush()
    out.put((sent, time.perf_counter() - pacer.started))
    producer.close()


def _at_end(stage: Stage, topic: str) -> KafkaConsumer:
    reader = stage.peeker()
    parts = partitions_of(reader, topic)
    reader.assign(parts)
    reader.seek_to_end(*parts)
    for part in parts:
        reader.position(part)  # resolve the end now, not at the first poll
    return reader


def _load(
    stage: Stage, stream: str, per_second: float, seconds: float, drain: float
) -> dict[str, Any]:
    tag = f"L{int(per_second)}"
    reader = _at_end(stage, topics.predictions(stream))
    context = multiprocessing.get_context("spawn")
    out: Queue[Any] = context.Queue()
    producer = context.Process(
        target=offer,
        args=(stage.kafka, topics.events(stream), tag, per_second, seconds, out),
    )
    producer.start()
    prefix = f'"event_id":"{tag}-'.encode()
    warm_up = min(1.0, seconds / 5) * per_second  # the first second's events: connections warm
    latencies: list[float] = []
    received = 0
    result: tuple[int, float] | None = None
    deadline = float("inf")
    try:
        while result is None or (received < result[0] and time.monotonic() < deadline):
            for records in reader.poll(timeout_ms=200).values():
                now = time.time()
                for record in records:
                    if prefix not in record.value:
                        continue
                    prediction = orjson.loads(record.value)
                    received += 1
                    if int(prediction["event_id"].rsplit("-", 1)[1]) < warm_up:
                        continue
                    event_time = datetime.fromisoformat(prediction["event_time"])
                    latencies.append((now - event_time.timestamp()) * 1000)
            if result is None and not out.empty():
                result = out.get()
                deadline = time.monotonic() + drain
    finally:
        producer.join(30)
        reader.close()
    assert result is not None
    sent, elapsed = result
    return {
        "offered_per_second": per_second,
        "achieved_per_second": round(sent / elapsed),
        "sent": sent,
        "predicted": received,
        "missing_after_drain": sent - received,
        **percentiles(latencies),
        "max_ms": round(max(latencies), 2),
    }


def latencies(
    stage: Stage, stream: str, loads: tuple[float, ...], seconds: float, drain: float
) -> list[dict[str, Any]]:
    """Percentiles of end-to-end latency at each offered load, the predictor running throughout."""
    config = stage.config(stream)
    predictor = stage.spawn("predictor", config)
    try:
        # Let it start, load its champion and join its group before anything is timed.
        _load(stage, stream, 500.0, 2.0, drain=60.0)
        results = []
        for per_second in loads:
            if predictor.poll() is not None:
                raise RuntimeError("the predictor exited:\n" + stage.log_of("predictor", config))
            cpu = read_cpu_seconds(predictor.pid)
            found = _load(stage, stream, per_second, seconds, drain)
            # What the predictor's process (all its threads) spent per event offered.
            used = read_cpu_seconds(predictor.pid) - cpu
            found["predictor_cpu_us_per_event"] = round(used / max(found["sent"], 1) * 1e6, 1)
            results.append(found)
        return results
    finally:
        stop(predictor)
