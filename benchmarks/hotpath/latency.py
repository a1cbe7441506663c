"""End-to-end latency: from an event's publication to its prediction being readable.

A paced producer (its own process, so its sends do not wait on this one's reads) offers events
at a fixed rate, each stamped with its publication time as the event time. Here, a consumer in
no group reads ``S.predictions`` from its end and takes ``now - event_time`` of each prediction.
The predictor runs throughout, as ``meander run predictor`` in its own process.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from benchmarks.hotpath.stage import FEATURES, Stage, partitions_of, samples, stop
from benchmarks.hotpath.stats import Pacer, percentiles, read_cpu_seconds
from meander import topics
from meander.bus import Consumer, TopicPartition
from meander.bus.kafka import KafkaBus

__all__ = ["NoAnswers", "bare_latencies", "confluent_loop", "copy_loop", "latencies", "offer"]

# In the order meander.events.encode writes them (ce_id and ce_time go between), so that the
# predictor reads them by position as it reads its own producers' events.
_SPEC = ("ce_specversion", b"1.0")
_SOURCE_TYPE = (("ce_source", b"/bench/hotpath/latency"), ("ce_type", b"io.meander.event.v1"))
_CONTENT = ("content-type", b"application/json")


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
    # No linger: a record goes as soon as it is sent; under load batches form while the
    # previous request is in flight.
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    pacer = Pacer(per_second)
    end = pacer.started + seconds
    sent = 0
    while (now := time.perf_counter()) < end:
        due = pacer.due(now)
        if not due:
            time.sleep(max(0.0, pacer.next_due() - now))
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
            headers = [_SPEC, ("ce_id", event_id.encode()), *_SOURCE_TYPE, header_time, _CONTENT]
            producer.send(topic, value=value, key=event_id.encode(), headers=headers)
            sent += 1
        pacer.sent(due)
    producer.flush()
    out.put((sent, time.perf_counter() - pacer.started))
    producer.close()


@contextmanager
def _at_end(stage: Stage, topic: str) -> Iterator[Consumer]:
    """A reader of ``topic`` from its end now, on meander's bus: it reads fetched batches
    straight into messages (a third of kafka-python's CPU per record)."""
    with KafkaBus(stage.kafka) as bus:
        parts = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
        reader = bus.assign(parts)
        try:
            for part, end in reader.end_offsets(parts).items():
                reader.seek(part, end)
            yield reader
        finally:
            reader.close()


def _load(
    stage: Stage,
    source: str,
    answers: str,
    per_second: float,
    seconds: float,
    drain: float,
    fields: tuple[bytes, str, str] = (b"event_id", "event_id", "event_time"),
) -> dict[str, Any]:
    """Offer events to ``source`` at ``per_second``; time each answer read on ``answers``: its
    JSON names the event in ``fields[1]`` and carries its stamp in ``fields[2]``."""
    tag = f"L{int(per_second)}"
    marker, named, stamped = fields
    prefix = b'"%s":"%s-' % (marker, tag.encode())
    warm_up = min(1.0, seconds / 5) * per_second  # the first second's events: connections warm
    latencies: list[float] = []
    received = 0
    result: tuple[int, float] | None = None
    deadline = float("inf")
    with _at_end(stage, answers) as reader:
        reader_parts = sorted(part.partition for part in reader.assignment())
        context = multiprocessing.get_context("spawn")
        out: Queue[Any] = context.Queue()
        producer = context.Process(
            target=offer, args=(stage.kafka, source, tag, per_second, seconds, out)
        )
        producer.start()
        try:
            while result is None or (received < result[0] and time.monotonic() < deadline):
                messages = reader.consume(1_000, 0.2)
                now = time.time()
                for message in messages:
                    if message.value is None or prefix not in message.value:
                        continue
                    answer = orjson.loads(message.value)
                    received += 1
                    if int(answer[named].rsplit("-", 1)[1]) < warm_up:
                        continue
                    event_time = datetime.fromisoformat(answer[stamped])
                    latencies.append((now - event_time.timestamp()) * 1000)
                if result is None and not out.empty():
                    result = out.get()
                    deadline = time.monotonic() + drain
        finally:
            producer.join(30)
    assert result is not None
    sent, elapsed = result
    if not latencies:
        raise NoAnswers(
            f"{received} of {sent} events offered to {source} at {per_second:,.0f}/s were "
            f"answered on {answers} within {drain:.0f} s of the last send, none of them after "
            f"the first {warm_up:,.0f} (partitions read: {reader_parts})"
        )
    return {
        "offered_per_second": per_second,
        "achieved_per_second": round(sent / elapsed),
        "sent": sent,
        "predicted": received,
        "missing_after_drain": sent - received,
        **percentiles(latencies),
        "max_ms": round(max(latencies), 2),
    }


class NoAnswers(RuntimeError):
    """No answer to a timed event was read: the benchmark cannot give a percentile."""


def latencies(
    stage: Stage, stream: str, loads: tuple[float, ...], seconds: float, drain: float
) -> list[dict[str, Any]]:
    """Percentiles of end-to-end latency at each offered load, the predictor running throughout."""
    config = stage.config(stream)
    source, answers = topics.events(stream), topics.predictions(stream)
    predictor = stage.spawn("predictor", config)
    try:
        # Let it start, load its champion and join its group before anything is timed.
        try:
            _load(stage, source, answers, 500.0, 2.0, drain=60.0)
        except NoAnswers as error:
            raise NoAnswers(f"warming up: {error}\n{_state(stage, predictor, config)}") from None
        results = []
        for per_second in loads:
            if predictor.poll() is not None:
                raise RuntimeError(_state(stage, predictor, config))
            cpu = read_cpu_seconds(predictor.pid)
            try:
                found = _load(stage, source, answers, per_second, seconds, drain)
            except NoAnswers as error:
                raise NoAnswers(f"{error}\n{_state(stage, predictor, config)}") from None
            # What the predictor's process (all its threads) spent per event offered.
            used = read_cpu_seconds(predictor.pid) - cpu
            found["predictor_cpu_us_per_event"] = round(used / max(found["sent"], 1) * 1e6, 1)
            results.append(found)
        return results
    finally:
        stop(predictor)


def _state(stage: Stage, predictor: subprocess.Popen[bytes], config: Path) -> str:
    """Whether the predictor still runs, and the last lines it wrote (its log goes with the
    benchmark's scratch folder)."""
    code = predictor.poll()
    state = "still running" if code is None else f"exited with {code}"
    return f"the predictor is {state}; its log ends:\n" + stage.log_of("predictor", config)


def copy_loop(bootstrap: str, source: str, target: str, stop: Event) -> None:
    """The bare kafka-python loop, for latency: read each event of ``source`` and write its
    bytes to ``target`` at once, until ``stop`` is set; no meander code.

    Its client settings are kafka-python's defaults but for the producer's delivery settings,
    which are the predictor's (acks from every replica, idempotent): a lone record goes out as
    soon as it is sent (no linger), and a poll returns as soon as a fetch brought records.
    """
    # Assigned rather than subscribed: kafka-python 3.0.12 can strand a group join that a short
    # poll began (see meander.bus.kafka_consumer.finish_join), and this loop commits nothing.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    consumer.assign(partitions_of(consumer, source))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    producer.send(target, value=record.value, key=record.key)
    finally:
        producer.close()
        consumer.close()


def confluent_loop(bootstrap: str, source: str, target: str, stop: Event) -> None:
    """:func:`copy_loop` on confluent-kafka (librdkafka, C) instead of kafka-python: the
    reference for what another client would give, with the same delivery settings (acks from
    every replica, idempotent, no linger). Needs the ``bench`` extra; meander never does."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as Partition

    # A group id is required, though nothing joins or commits: the partitions are assigned.
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bare-{source}", "enable.auto.commit": False}
    )
    found = consumer.list_topics(source, timeout=30).topics[source].partitions
    consumer.assign([Partition(source, p, 0) for p in sorted(found)])
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0}
    )
    try:
        while not stop.is_set():
            for message in consumer.consume(num_messages=500, timeout=0.2):
                if message.error() is None:
                    producer.produce(target, message.value(), message.key())
            producer.poll(0)  # delivery reports
    finally:
        producer.flush(30)
        consumer.close()


def bare_latencies(
    stage: Stage,
    loads: tuple[float, ...],
    seconds: float,
    drain: float,
    loop: Callable[[str, str, str, Event], None] | None = copy_loop,
) -> list[dict[str, Any]]:
    """The same percentiles, offered load and measurement for ``loop`` (:func:`copy_loop` or
    :func:`confluent_loop`) in place of the predictor: what the client and the broker alone give
    on this machine at these loads. With no loop, the measuring reader reads the paced
    producer's own topic: the share of each percentile that is the measurement's own."""
    if loop is None:
        return _direct(stage, loads, seconds, drain)
    name = uuid.uuid4().hex[:8]
    source, target = f"hotpath.bare-in.{name}", f"hotpath.bare-out.{name}"
    with KafkaBus(stage.kafka) as bus:
        bus.create_topics({source: 3, target: 3})
    context = multiprocessing.get_context("spawn")
    stop_loop = context.Event()
    process = context.Process(target=loop, args=(stage.kafka, source, target, stop_loop))
    process.start()
    fields = (b"id", "id", "time")  # the event's own bytes come back
    try:
        try:
            _load(stage, source, target, 500.0, 2.0, drain=60.0, fields=fields)  # warm
        except NoAnswers as error:
            state = "still running" if process.is_alive() else f"exited with {process.exitcode}"
            raise NoAnswers(f"warming up the bare loop ({state}): {error}") from None
        results = []
        for per_second in loads:
            if not process.is_alive():
                raise RuntimeError(f"the bare loop exited ({process.exitcode})")
            cpu = read_cpu_seconds(process.pid or 0)
            found = _load(stage, source, target, per_second, seconds, drain, fields=fields)
            used = read_cpu_seconds(process.pid or 0) - cpu
            found["loop_cpu_us_per_event"] = round(used / max(found["sent"], 1) * 1e6, 1)
            results.append(found)
        return results
    finally:
        stop_loop.set()
        process.join(30)
        if process.is_alive():
            process.kill()


def _direct(
    stage: Stage, loads: tuple[float, ...], seconds: float, drain: float
) -> list[dict[str, Any]]:
    topic = f"hotpath.direct.{uuid.uuid4().hex[:8]}"
    with KafkaBus(stage.kafka) as bus:
        bus.create_topics({topic: 3})
    fields = (b"id", "id", "time")
    _load(stage, topic, topic, 500.0, 2.0, drain=60.0, fields=fields)  # connections warm
    return [_load(stage, topic, topic, rate, seconds, drain, fields=fields) for rate in loads]
