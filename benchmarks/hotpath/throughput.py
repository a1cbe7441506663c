"""Throughput: the same events through a bare loop, the tutorial loop, and meander's predictor.

All three read the events already on ``S.events`` (3 partitions) and write one record per
event; each is timed from its first output record to its last, by the records' own timestamps
(the producer's clock), so start-up and group joining are not counted for anyone.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from benchmarks.hotpath.stage import Stage, count, span_ms, stop
from meander import topics
from meander.bus.kafka import KafkaBus
from meander.models.registry import Registry
from meander.models.signing import signer_for

__all__ = ["ceiling", "meander", "meander_exactly_once", "naive"]


def _output(stage: Stage, name: str) -> str:
    topic = f"hotpath.{name}.{uuid.uuid4().hex[:8]}"
    with KafkaBus(stage.kafka) as bus:
        bus.create_topics({topic: 3})
    return topic


def _rate(stage: Stage, topic: str, events: int) -> dict[str, Any]:
    peeker = stage.peeker()
    try:
        produced = count(peeker, topic)
        first, last = span_ms(peeker, topic)
    finally:
        peeker.close()
    if produced < events:
        raise RuntimeError(f"{topic} holds {produced} records, expected {events}")
    seconds = (last - first) / 1000
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_second": round(events / seconds) if seconds > 0 else None,
    }


def _consumer(stage: Stage, stream: str, **options: Any) -> KafkaConsumer:
    return KafkaConsumer(
        topics.events(stream),
        bootstrap_servers=stage.kafka,
        group_id=f"hotpath-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        **options,
    )


def ceiling(stage: Stage, stream: str, events: int) -> dict[str, Any]:
    """A bare kafka-python loop: read each event, write its bytes back out; no meander code.

    It gets the generous client settings (large polls, a short linger, big batches) so that it
    stands for the most kafka-python moves on this machine.
    """
    topic = _output(stage, "ceiling")
    consumer = _consumer(stage, stream, max_poll_records=5_000, fetch_max_bytes=64 * 2**20)
    producer = KafkaProducer(
        bootstrap_servers=stage.kafka, linger_ms=5, batch_size=512 * 1024, acks=1
    )
    seen = 0
    try:
        while seen < events:
            for records in consumer.poll(timeout_ms=1_000).values():
                for record in records:
                    producer.send(topic, value=record.value, key=record.key, headers=record.headers)
                seen += len(records)
        producer.flush()
    finally:
        producer.close()
        consumer.close()
    return _rate(stage, topic, events)


def naive(stage: Stage, stream: str, events: int) -> dict[str, Any]:
    """The tutorial loop: per message ``json.loads``, score, ``json.dumps``, ``send``.

    It scores with ``predict_proba_one`` (what ``predict_one`` computes first) to publish the
    same label and probabilities meander's predictions carry.
    """
    settings = stage.settings(stream)
    store = redis.Redis.from_url(stage.redis)
    registry = Registry(store, stream, signer_for(settings))
    champion = registry.champion()
    assert champion is not None, f"stream {stream} has no champion: call Stage.prepare first"
    model, _ = registry.load(champion)
    store.close()
    topic = _output(stage, "naive")
    consumer = _consumer(stage, stream)
    producer = KafkaProducer(bootstrap_servers=stage.kafka)
    seen = 0
    try:
        while seen < events:
            for records in consumer.poll(timeout_ms=1_000).values():
                for record in records:
                    event = json.loads(record.value)
                    proba = model.predict_proba_one(event["features"])
                    label = max(proba, key=proba.__getitem__)
                    answer = {
                        "event_id": event["id"],
                        "prediction": label,
                        "probabilities": {str(k): v for k, v in proba.items()},
                        "event_time": event["time"],
                    }
                    producer.send(topic, value=json.dumps(answer).encode(), key=record.key)
                seen += len(records)
        producer.flush()
    finally:
        producer.close()
        consumer.close()
    return _rate(stage, topic, events)


def meander(
    stage: Stage,
    stream: str,
    events: int,
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``meander run predictor`` as its own process, from its first prediction to the last
    (``env``: settings of its own, such as the Kafka client)."""
    return _predictor(stage, stream, events, timeout, env or {})


def meander_exactly_once(
    stage: Stage,
    stream: str,
    events: int,
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The same with ``processing_guarantee = "exactly_once"``: each batch's predictions and
    offsets in one Kafka transaction (``env``: settings of its own, such as the Kafka client)."""
    guarantee = {**(env or {}), "MEANDER_PROCESSING_GUARANTEE": "exactly_once"}
    return _predictor(stage, stream, events, timeout, guarantee)


def _predictor(
    stage: Stage, stream: str, events: int, timeout: float, env: dict[str, str]
) -> dict[str, Any]:
    config = stage.config(stream)
    topic = topics.predictions(stream)
    predictor = stage.spawn("predictor", config, env)
    admin = KafkaAdminClient(bootstrap_servers=stage.kafka)
    group = f"meander-predictor-{stream}"
    deadline = time.monotonic() + timeout
    try:
        # Done once the group committed every event (a transaction's commit markers take
        # offsets on the output topic, so its end offsets overcount the predictions).
        while _committed(admin, group) < events:
            if predictor.poll() is not None:
                raise RuntimeError(
                    f"meander run predictor exited ({predictor.returncode}):\n"
                    + stage.log_of("predictor", config)
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the predictor did not score {events} events in {timeout} s")
            time.sleep(0.25)
    finally:
        admin.close()
        stop(predictor)
    return _rate(stage, topic, events)


def _committed(admin: KafkaAdminClient, group: str) -> int:
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError as error:  # no coordinator yet for a group that never committed
        if not error.retriable:
            raise
        return 0
    return sum(found.offset for found in offsets.values())
