"""A Redis that refuses commands (full at ``maxmemory``, or gone) does not stop predictions: a
predictor serves the models it holds, since no decision can change them meanwhile (every one is
a Redis write), and follows the registry again once Redis answers.

The service is not ready meanwhile: such a Redis answers PING and refuses writes.

On the session's Kafka and a Redis server of the test's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient
from river import tree

from meander.config import Settings
from meander.consumers.predictor.predictor import Predictor
from meander.infra.redis import LocalRedis
from meander.models.registry import Registry
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.services import create_app

COUNT = 200


def _full(store: LocalRedis) -> Callable[[], None]:
    """Redis at its maxmemory (no eviction): it refuses every command in a transaction."""
    admin = redis.Redis.from_url(store.url)
    admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) // 2)
    return lambda: admin.config_set("maxmemory", 0) and None


def _gone(store: LocalRedis) -> Callable[[], None]:
    store.stop()
    return lambda: store.start(timeout=30)


@pytest.mark.parametrize("fault", [_full, _gone])
def test_a_predictor_serves_the_models_it_holds_while_redis_refuses(
    stream_name: str,
    own_redis: LocalRedis,
    real_settings: Callable[..., Settings],
    fault: Callable[[LocalRedis], Callable[[], None]],
) -> None:
    store = own_redis
    stream = synthetic("sea").stream_config(stream_name, model="tree.HoeffdingTreeClassifier")
    settings = real_settings(stream, redis_url=store.url, redis_timeout_seconds=1)
    events, _ = Publisher(stream_name).push(list(synthetic("sea", seed=5).samples(2 * COUNT)))
    with Runtime.open(settings) as runtime:
        registry = Registry.of(runtime, stream)
        registry.promote(registry.register(tree.HoeffdingTreeClassifier(), spec="t").version)
        predictor = Predictor(runtime, stream)
        runtime.bus.publish(events[:COUNT])
        _serve(predictor, COUNT)
        recover = fault(store)
        runtime.bus.publish(events[COUNT:])

        _serve(predictor, 2 * COUNT)

        recover()
        later = registry.register(tree.HoeffdingTreeClassifier(), spec="t").version
        registry.promote(later)
        deadline = time.monotonic() + 30
        while predictor.lineup.champion != later:  # it follows the registry again
            assert time.monotonic() < deadline, "the predictor never followed the registry"
            predictor.step(0.2)
        predictor.close()


def _serve(predictor: Predictor, count: int) -> None:
    deadline = time.monotonic() + 60
    while predictor.scored < count:
        assert time.monotonic() < deadline, f"{predictor.scored} of {count} events predicted"
        try:
            predictor.step(0.2)
        except Exception as error:  # as the component runner carries on
            print("step failed:", type(error).__name__, error)


def test_the_service_is_not_ready_while_redis_refuses_writes(
    own_redis: LocalRedis, real_settings: Callable[..., Settings]
) -> None:
    # Redis at its maxmemory still answers PING: readiness must try a write.
    settings = real_settings(redis_url=own_redis.url, redis_timeout_seconds=1)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["ready"] is True
        recover = _full(own_redis)

        refused = client.get("/readyz")

        assert refused.status_code == 503
        assert "refuses writes" in refused.json()["checks"]["store"]
        recover()
        assert client.get("/readyz").json()["ready"] is True
