"""A component started before Kafka and Redis waits for them, saying so, and then works.

A deployment starts its processes in any order, and an outage may outlast a restart: `meander
run` must not exit (a crash loop) but wait with back-off, naming what it waits for in its log,
in ``meander_waiting_for_backend`` and on ``/readyz``. Here the broker and the Redis server are
started only after the component, on ports chosen beforehand.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meander import topics
from meander.bus import TopicPartition
from meander.config import Settings
from meander.infra.kafka import LocalKafka
from meander.infra.process import free_port
from meander.infra.redis import LocalRedis
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

if TYPE_CHECKING:
    from tests.integration.conftest import Child

MEANDER = str(Path(sys.executable).parent / "meander")


@pytest.mark.integration
def test_a_monitor_started_before_kafka_and_redis_waits_for_them_then_works(
    stream_name: str,
    write_config: Callable[..., Path],
    spawn: Callable[..., Child],
    wait_for: Callable[..., object],
    tmp_path: Path,
) -> None:
    kafka_port = free_port()
    redis_port = free_port(avoid=[kafka_port])
    metrics_port = free_port(avoid=[kafka_port, redis_port])
    kafka = LocalKafka(port=kafka_port, data_dir=tmp_path / "kafka")
    store = LocalRedis(port=redis_port, data_dir=tmp_path / "redis")
    stream = synthetic("sea").stream_config(stream_name)
    env = {
        "MEANDER_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "MEANDER_REDIS_URL": store.url,
        "MEANDER_KAFKA_TIMEOUT_SECONDS": "2",
        "MEANDER_METRICS_PORT": str(metrics_port),
    }
    monitor = spawn(
        "monitor", [MEANDER, "run", "monitor", "--config", str(write_config(stream))], env
    )
    try:
        logs_until(wait_for, monitor, "waiting for kafka")
        assert _waiting(metrics_port) == {"kafka": 1.0, "redis": 0.0}
        status, ready = _readyz(metrics_port)
        assert status == 503 and ready["checks"]["bus"] != "ok", ready
        # Stopped while it waits, a process exits cleanly (no crash loop in a supervisor's log).
        trainer = spawn(
            "trainer",
            [MEANDER, "run", "trainer", "--config", str(write_config(stream, name="t.toml"))],
            {**env, "MEANDER_METRICS_PORT": "0"},
        )
        logs_until(wait_for, trainer, "waiting for kafka")
        assert trainer.stop() == 0, trainer.output()

        kafka.start(timeout=120)
        logs_until(wait_for, monitor, "waiting for redis")
        assert _waiting(metrics_port) == {"kafka": 0.0, "redis": 1.0}
        status, ready = _readyz(metrics_port)
        assert status == 503 and ready["checks"]["bus"] == "ok", ready
        assert "did not answer" in ready["checks"]["store"], ready

        store.start(timeout=30)
        settings = Settings(kafka_bootstrap=kafka.bootstrap, redis_url=store.url, streams=[stream])
        with Runtime.open(settings) as runtime:
            events, _ = Publisher(stream_name).push(synthetic("sea").samples(300))
            runtime.bus.publish(events)
            group = f"meander-monitor-{stream_name}"
            parts = [
                TopicPartition(topics.events(stream_name), p) for p in range(stream.partitions)
            ]
            wait_for(
                lambda: _committed(kafka.bootstrap, group, parts) == 300,
                "the monitor to read and commit every event",
                timeout=120,
                children=[monitor],
            )
        assert _waiting(metrics_port) == {"kafka": 0.0, "redis": 0.0}
        assert _readyz(metrics_port) == (200, {"ready": True, "checks": _all_ok()})
        assert monitor.stop() == 0
    finally:
        store.stop()
        kafka.stop()


def logs_until(wait_for: Callable[..., object], child: Child, text: str) -> None:
    """Waits (at most 90 s: a start under load) until ``child`` logs ``text``."""
    wait_for(
        lambda: text in child.output(),
        f"{child.name} to log {text!r}",
        timeout=90,
        children=[child],
    )


def _waiting(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("meander_waiting_for_backend{"):
            name = line.split('backend="', 1)[1].split('"', 1)[0]
            found[name] = float(line.rsplit(" ", 1)[1])
    return found


def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _all_ok() -> dict[str, str]:
    return {"bus": "ok", "store": "ok", "components": "ok"}


def _committed(bootstrap: str, group: str, parts: list[TopicPartition]) -> int:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum(reader.committed(KafkaTopicPartition(*p)) or 0 for p in parts)
    finally:
        reader.close()
