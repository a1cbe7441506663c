"""Reference loops for the latency part: what the client and the broker alone give.

The same paced producer, offered loads and measuring reader as :mod:`benchmarks.hotpath.latency`,
with a loop of no meander code in place of the predictor (:func:`copy_loop` on kafka-python,
:func:`confluent_loop` on confluent-kafka), or with no loop at all: the measuring reader reads
the paced producer's own topic, the share of each percentile that is the measurement's own.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from benchmarks.hotpath.latency import NoAnswers, fetched, measure
from benchmarks.hotpath.stage import Stage, partitions_of
from benchmarks.hotpath.stats import read_cpu_seconds
from meander.bus.kafka import KafkaBus

__all__ = ["bare_latencies", "confluent_loop", "copy_loop"]


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
            for message in fetched(consumer):
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
            measure(stage, source, target, 500.0, 2.0, drain=60.0, fields=fields)  # warm
        except NoAnswers as error:
            state = "still running" if process.is_alive() else f"exited with {process.exitcode}"
            raise NoAnswers(f"warming up the bare loop ({state}): {error}") from None
        results = []
        for per_second in loads:
            if not process.is_alive():
                raise RuntimeError(f"the bare loop exited ({process.exitcode})")
            cpu = read_cpu_seconds(process.pid or 0)
            found = measure(stage, source, target, per_second, seconds, drain, fields=fields)
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
    measure(stage, topic, topic, 500.0, 2.0, drain=60.0, fields=fields)  # connections warm
    return [measure(stage, topic, topic, rate, seconds, drain, fields=fields) for rate in loads]
