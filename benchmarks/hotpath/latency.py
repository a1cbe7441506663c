"""End-to-end latency: from an event's publication to its prediction being readable.

A paced producer (its own process, so its sends do not wait on this one's reads) offers events
at a fixed rate, each stamped with its publication time as the event time. Here, a consumer in
no group reads ``S.predictions`` from its end and takes ``now - event_time`` of each prediction.
The predictor runs throughout, as ``meander run predictor`` in its own process. The reference
loops measured the same way, without meander, are in :mod:`benchmarks.hotpath.bare`.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.util import find_spec
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Protocol

import orjson
from kafka import KafkaProducer

from benchmarks.hotpath import machine
from benchmarks.hotpath.stage import FEATURES, Stage, samples, stop
from benchmarks.hotpath.stats import Pacer, percentiles, read_cpu_seconds, slow_spells
from meander import topics
from meander.bus import Consumer, TopicPartition
from meander.bus.kafka import KafkaBus

__all__ = [
    "MEASURING_CLIENT",
    "PACED_IN_FLIGHT",
    "NoAnswers",
    "fetched",
    "latencies",
    "measure",
    "offer",
    "paced_settings",
]

# In the order meander.events.encode writes them (ce_id and ce_time go between), so that the
# predictor reads them by position as it reads its own producers' events.
_SPEC = ("ce_specversion", b"1.0")
_SOURCE_TYPE = (("ce_source", b"/bench/hotpath/latency"), ("ce_type", b"io.meander.event.v1"))
_CONTENT = ("content-type", b"application/json")


def offer(
    bootstrap: str, topic: str, tag: str, per_second: float, seconds: float, out: Queue[Any]
) -> None:
    """Publish ``{tag}-0..`` at ``per_second`` for ``seconds``; put (sent, elapsed, CPU
    seconds) on ``out``.

    Records are built by hand rather than through pydantic so that building them does not
    limit the rate offered; they are the bytes ``meander.events.encode`` writes. They are sent
    with confluent-kafka when it is installed (the ``bench`` extra), else with kafka-python:
    on 2 cores the measurement's own CPU competes with what it measures, and kafka-python's
    producer took 7 times librdkafka's CPU per event at 1,000/s (592 against 86 us, one
    request per event).
    """
    rows = [
        orjson.dumps(dict(zip(FEATURES, x, strict=True)))
        for _, chunk, _ in samples(0, 2_000)
        for x in chunk.tolist()
    ]
    # No linger: a record goes as soon as it is sent; under load batches form while the
    # previous request is in flight.
    producer = _paced_producer(bootstrap)
    pacer = Pacer(per_second)
    end = pacer.started + seconds
    sent = 0
    cpu = time.process_time()
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
            producer.send(topic, value, event_id.encode(), headers)
            sent += 1
        pacer.sent(due)
    producer.close()
    out.put((sent, time.perf_counter() - pacer.started, time.process_time() - cpu))


MEASURING_CLIENT = "confluent-kafka" if find_spec("confluent_kafka") else "kafka-python"
SLOW_MS = 25.0  # issue 17's target for p99: the answers slower than it are located in time


class _Sends(Protocol):
    def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Hand one record over, to be sent at once (no linger, the leader's acknowledgement)."""

    def close(self) -> None:
        """Send what is left, then let go."""


PACED_IN_FLIGHT = 5
"""The paced producer's requests awaiting an answer, at most: the Java client's default and
kafka-python's. librdkafka's is 1,000,000 without idempotence, and with no linger it sent each
record or two as a request of its own, thousands queued on one connection (which the broker
answers one request at a time): 1,046-4,048 awaiting an answer, each 0.14-1.1 s, in the
confluent-kafka parts at 5,000/s. With at most 5, records sent while they are out go together
in the next request; a lone record still goes at once."""


def paced_settings(bootstrap: str) -> dict[str, object]:
    """The paced producer's settings on confluent-kafka: no linger, the leader's
    acknowledgement, at most :data:`PACED_IN_FLIGHT` requests awaiting an answer.

    >>> paced_settings("localhost:9092")["max.in.flight.requests.per.connection"]
    5
    """
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 0,
        "acks": 1,
        "max.in.flight.requests.per.connection": PACED_IN_FLIGHT,
        # murmur2 picks the partitions kafka-python and the JVM clients pick for the same keys.
        "partitioner": "murmur2_random",
    }


def _paced_producer(bootstrap: str) -> _Sends:
    if MEASURING_CLIENT == "kafka-python":
        # kafka-python holds at most 5 requests in flight by default, as the Java client.
        return _KafkaPythonSends(KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1))
    from confluent_kafka import Producer

    return _ConfluentSends(Producer(paced_settings(bootstrap)))


class _KafkaPythonSends:
    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer

    def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.producer.send(topic, value=value, key=key, headers=headers)

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


class _ConfluentSends:
    def __init__(self, producer: Any) -> None:
        self.producer = producer

    def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.producer.produce(topic, value, key, headers=headers)
        self.producer.poll(0)  # delivery reports

    def close(self) -> None:
        if self.producer.flush(60):
            raise RuntimeError("the paced producer could not deliver every event in 60 s")


def _cpu_seconds(pid: int | None) -> float | None:
    return None if pid is None else read_cpu_seconds(pid)


def _since(now: float | None, then: float | None) -> float | None:
    return None if now is None or then is None else now - then


class _Reads(Protocol):
    partitions: list[int]

    def values(self) -> list[bytes | None]:
        """The values of the records fetched next, waiting up to 0.2 s for some."""


@contextmanager
def _at_end(stage: Stage, topic: str) -> Iterator[_Reads]:
    """A reader of ``topic`` from its end now, on confluent-kafka when it is installed (as the
    paced producer), else on meander's bus (fetched batches read straight into messages)."""
    if MEASURING_CLIENT == "confluent-kafka":
        from confluent_kafka import Consumer as Reader
        from confluent_kafka import TopicPartition as Partition

        # A group id is required, though nothing joins or commits: the partitions are assigned.
        config = {"bootstrap.servers": stage.kafka, "enable.auto.commit": False}
        reader = Reader({**config, "group.id": f"measure-{topic}"})
        try:
            found = sorted(reader.list_topics(topic, timeout=30).topics[topic].partitions)
            ends = [_end_of(reader, Partition(topic, p)) for p in found]
            reader.assign([Partition(topic, p, end) for p, end in zip(found, ends, strict=True)])
            yield _ConfluentReads(reader, found)
        finally:
            reader.close()
        return
    with KafkaBus(stage.kafka) as bus:
        parts = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
        consumer = bus.assign(parts)
        try:
            for part, end in consumer.end_offsets(parts).items():
                consumer.seek(part, end)
            yield _BusReads(consumer, [part.partition for part in parts])
        finally:
            consumer.close()


def _end_of(reader: Any, partition: Any) -> int:
    """The partition's end offset; a topic just created may have no leader for a moment."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + 30.0
    while True:
        try:
            return int(reader.get_watermark_offsets(partition, 10)[1])
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class _BusReads:
    def __init__(self, consumer: Consumer, partitions: list[int]) -> None:
        self.consumer, self.partitions = consumer, partitions

    def values(self) -> list[bytes | None]:
        return [message.value for message in self.consumer.consume(1_000, 0.2)]


class _ConfluentReads:
    def __init__(self, reader: Any, partitions: list[int]) -> None:
        self.reader, self.partitions = reader, partitions

    def values(self) -> list[bytes | None]:
        return [message.value() for message in fetched(self.reader)]


def fetched(consumer: Any) -> list[Any]:
    """What a confluent-kafka consumer has fetched, waiting up to 0.2 s for the first record
    only: ``consume(n, timeout)`` waits until it has ``n`` records or the timeout passed."""
    first = consumer.poll(0.2)
    if first is None:
        return []
    found = [first, *consumer.consume(num_messages=999, timeout=0)]
    return [message for message in found if message.error() is None]


def measure(
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
    read_at: list[float] = []  # when each timed answer was read
    received = 0
    result: tuple[int, float, float] | None = None
    deadline = float("inf")
    broker = _cpu_seconds(stage.broker_pid)
    with _at_end(stage, answers) as reader:
        reading = time.process_time()  # this process is the measuring reader, once connected
        reader_parts = reader.partitions
        context = multiprocessing.get_context("spawn")
        out: Queue[Any] = context.Queue()
        producer = context.Process(
            target=offer, args=(stage.kafka, source, tag, per_second, seconds, out)
        )
        busy: dict[str, Any] = {}
        with machine.sampled(busy):
            producer.start()
            try:
                while result is None or (received < result[0] and time.monotonic() < deadline):
                    values = reader.values()
                    now = time.time()
                    for value in values:
                        if value is None or prefix not in value:
                            continue
                        answer = orjson.loads(value)
                        received += 1
                        if int(answer[named].rsplit("-", 1)[1]) < warm_up:
                            continue
                        event_time = datetime.fromisoformat(answer[stamped])
                        latencies.append((now - event_time.timestamp()) * 1000)
                        read_at.append(now)
                    if result is None and not out.empty():
                        result = out.get()
                        deadline = time.monotonic() + drain
            finally:
                producer.join(30)
        reading = time.process_time() - reading
    broker = _since(_cpu_seconds(stage.broker_pid), broker)
    assert result is not None
    sent, elapsed, producing = result
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
        # When the answers over the target (25 ms) came: one spell is a stall, many a spread.
        "slow_spells": slow_spells(
            [(at - read_at[0], ms) for at, ms in zip(read_at, latencies, strict=True)], SLOW_MS
        ),
        # The spells' origin on the wall clock (Unix seconds), to set them beside other logs
        # of the same moments (a broker's collector pauses, say).
        "first_answer_unix": round(read_at[0], 3),
        # The measurement's own CPU per event offered: the paced producer's process while it
        # sends, the measuring reader, and the broker (idle work included; None when the broker
        # is not this machine's).
        "producer_cpu_us_per_event": round(producing / max(sent, 1) * 1e6, 1),
        "reader_cpu_us_per_event": round(reading / max(sent, 1) * 1e6, 1),
        "broker_cpu_us_per_event": None
        if broker is None
        else round(broker / max(sent, 1) * 1e6, 1),
        # The whole machine from the producer's start to the last answer (sampled every 0.1 s):
        # the cores busy on average, and the share of intervals in which every core was.
        **busy,
    }


class NoAnswers(RuntimeError):
    """No answer to a timed event was read: the benchmark cannot give a percentile."""


def latencies(
    stage: Stage,
    stream: str,
    loads: tuple[float, ...],
    seconds: float,
    drain: float,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Percentiles of end-to-end latency at each offered load, the predictor running throughout
    (``env``: settings of its own, such as the Kafka client)."""
    config = stage.config(stream)
    source, answers = topics.events(stream), topics.predictions(stream)
    predictor = stage.spawn("predictor", config, env)
    try:
        # Let it start, load its champion and join its group before anything is timed.
        try:
            measure(stage, source, answers, 500.0, 2.0, drain=60.0)
        except NoAnswers as error:
            raise NoAnswers(f"warming up: {error}\n{_state(stage, predictor, config)}") from None
        results = []
        for per_second in loads:
            if predictor.poll() is not None:
                raise RuntimeError(_state(stage, predictor, config))
            cpu = read_cpu_seconds(predictor.pid)
            try:
                found = measure(stage, source, answers, per_second, seconds, drain)
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
