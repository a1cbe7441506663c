"""What every component is given: the settings, the open bus and store, and the store's
changelog in Kafka with the guard that restores the store from it.

One :class:`Runtime` per process; components share it and never close it themselves.

>>> from meander.config import Settings
>>> with Runtime.open(Settings()) as runtime:
...     runtime.bus.partitions("meander.alerts")
1
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from redis.backoff import EqualJitterBackoff

from meander import topics
from meander.bus import Bus, MemoryBroker, connect_bus, embedded_bus
from meander.closing import Closing
from meander.config import Settings
from meander.events import keep_decoded
from meander.exceptions import BusError, ConfigError, MeanderError, StoreUnavailable
from meander.store import open_store
from meander.store.changelog import Changelog
from meander.store.guard import StoreGuard
from meander.telemetry.metrics import WAITING_FOR_BACKEND
from meander.telemetry.server import report_readiness

__all__ = ["Runtime", "check_state_topic", "open_when_up"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# The backends by their gauge label and their /readyz check, as the service names them.
BACKENDS = {"kafka": "bus", "redis": "store"}


@dataclass
class Runtime(Closing):
    """The settings, the bus and the store of one process."""

    settings: Settings
    bus: Bus
    store: redis.Redis[bytes]
    changelog: Changelog = field(init=False)
    guard: StoreGuard = field(init=False)

    def __post_init__(self) -> None:
        self.changelog = Changelog(self.bus, topics.STATE)
        self.guard = StoreGuard(self.store, self.bus)

    @classmethod
    def open(cls, settings: Settings, *, create_topics: bool = True) -> Runtime:
        """Connect to the configured backends and (by default) create the topics they need."""
        bus = connect_bus(settings)
        keep_decoded(not settings.uses_kafka)  # only the embedded bus hands a message on twice
        try:
            store = open_store(settings)
            if create_topics:
                bus.create_topics(
                    topics.layout(settings.streams), topics.configs(settings.state_max_bytes)
                )
                check_state_topic(bus, settings)
        except BaseException:
            bus.close()
            raise
        return cls(settings, bus, store)

    @classmethod
    def embedded(cls, settings: Settings) -> Runtime:
        """Backends of its own in this process, whatever ``settings`` point at: a new embedded
        bus with the settings' limits and a new embedded store, its topics created. A second
        demo or backtest in the same process starts from nothing."""
        import fakeredis  # the embedded store's: a component process on Redis never needs it

        from meander.store.memory import memory_store

        bus = embedded_bus(settings, MemoryBroker())
        keep_decoded(True)
        bus.create_topics(topics.layout(settings.streams), topics.configs(settings.state_max_bytes))
        return cls(settings, bus, memory_store(fakeredis.FakeServer()))

    def close(self) -> None:
        try:
            # What Redis took and Kafka has not yet: give it a moment before the bus closes.
            self.changelog.flush(timeout=min(5.0, self.settings.kafka_timeout_seconds))
        except MeanderError as error:
            log.warning("closing with changelog records not in Kafka: %s", error)
        finally:
            self.bus.close()
            self.store.close()


def check_state_topic(bus: Bus, settings: Settings) -> None:
    """ConfigError when the existing ``meander.state`` would lose what Redis is restored from
    (:func:`meander.topics.state_problems`), saying how to change it."""
    problems = topics.state_problems(bus.topic_settings(topics.STATE), settings.state_max_bytes)
    if problems:
        raise ConfigError(
            f"topic {topics.STATE} exists with settings meander cannot restore from: "
            f"{'; '.join(problems)} (kafka-configs.sh --bootstrap-server "
            f"{settings.kafka_bootstrap} --alter --entity-type topics --entity-name "
            f"{topics.STATE} --add-config <setting>=<value>)"
        )


def open_when_up(
    settings: Settings,
    stop: threading.Event,
    then: Callable[[Runtime], T],
    *,
    backoff: EqualJitterBackoff | None = None,
) -> tuple[Runtime, T] | None:
    """Open the runtime and build on it (``then``), waiting while Kafka or Redis does not
    answer; None when ``stop`` is set first.

    A deployment starts its processes in any order and an outage may outlast a restart, so a
    process waits rather than exits. Each failed attempt says in the log what it waits for,
    sets ``meander_waiting_for_backend`` for it and ``/readyz`` to 503 with the reason; the
    next attempt comes after an exponential back-off (from about a second, doubling, at most
    30 s, jittered so that processes waiting together do not knock together).
    """
    backoff = backoff or EqualJitterBackoff(cap=30.0, base=1.0)
    failures = 0
    while not stop.is_set():
        try:
            runtime = Runtime.open(settings)
            try:
                built = then(runtime)
            except BaseException:
                runtime.close()
                raise
        except (BusError, StoreUnavailable, redis.ConnectionError, redis.TimeoutError) as error:
            # A broker still starting refuses requests (BusError) before it serves them.
            down = "kafka" if isinstance(error, BusError) else "redis"
            _waiting_for(down, str(error))
            delay = backoff.compute(failures)
            failures += 1
            log.warning("waiting for %s: %s; trying again in %.1f s", down, error, delay)
            stop.wait(delay)
            continue
        _waiting_for(None, "")
        if failures:
            log.info("kafka and redis answer: started after %d attempts", failures + 1)
        return runtime, built
    return None


def _waiting_for(down: str | None, reason: str) -> None:
    for backend in BACKENDS:
        WAITING_FOR_BACKEND.labels(backend).set(1 if backend == down else 0)
    checks = {check: reason if backend == down else "ok" for backend, check in BACKENDS.items()}
    if down is None:
        checks["components"] = "ok"
    else:
        checks["components"] = f"waiting for {down}"
    report_readiness(checks)
