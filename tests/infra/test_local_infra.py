"""A real Kafka broker and a real Redis server start on free ports, serve a client, and stop."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from meander.infra import InfraError, LocalKafka, LocalRedis
from meander.infra.process import pid_alive

pytestmark = pytest.mark.integration


def _consume_one(bootstrap: str, topic: str, timeout: float = 30.0) -> bytes:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                return bytes(records[0].value)
        raise AssertionError(f"no message on {topic} within {timeout} s")
    finally:
        consumer.close()


@pytest.mark.timeout(300)  # a cold cache downloads the broker's jars first
def test_kafka_round_trip_then_stop() -> None:
    topic = f"infra-{uuid.uuid4().hex[:8]}"
    with LocalKafka() as kafka:
        pid, data_dir = kafka.pid, kafka.data_dir
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        try:
            producer.send(topic, b"hello").get(timeout=30)
        finally:
            producer.close()
        assert _consume_one(kafka.bootstrap, topic) == b"hello"
    assert pid is not None and not pid_alive(pid)
    assert data_dir is not None and not data_dir.exists()


@pytest.mark.timeout(60)
def test_redis_ping_then_stop() -> None:
    with LocalRedis() as store:
        pid = store.pid
        client = redis.Redis.from_url(store.url)
        try:
            assert client.ping()
        finally:
            client.close()
    assert pid is not None and not pid_alive(pid)


@pytest.mark.timeout(60)
def test_taken_port_fails_clearly() -> None:
    with LocalRedis() as first, pytest.raises(InfraError, match="already listens"):
        LocalRedis(port=first.port).start()


@pytest.mark.timeout(60)
def test_redis_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    store = LocalRedis(data_dir=tmp_path / "redis").start()
    try:
        client = redis.Redis.from_url(store.url)
        client.set("registry", b"v3")
        client.close()
        store.stop()
        store.start()
        client = redis.Redis.from_url(store.url)
        assert client.get("registry") == b"v3"  # from the append-only file
        client.close()
    finally:
        store.stop()
