"""Whether the store holds its data, and its restoration from Kafka when it does not.

Redis may come back from a restart empty. The key ``meander:store:ready`` tells the two apart:
set once a store is known to hold what ``meander.state`` says it should (a new deployment's
empty store, or one just restored), it is gone with everything else when Redis loses its data.
Whoever finds it missing restores: one process at a time (a lock with an expiry), reading the
changelog to its end (:func:`~meander.store.changelog.restore`), then setting the key. Every
write that matters checks the key in its own transaction (:meth:`StoreGuard.check`), so nothing
is written into an empty store and then overwritten by the restore, or the other way round.

>>> import fakeredis
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.store.changelog import Changelog
>>> from meander.store.memory import memory_store
>>> bus = MemoryBus(MemoryBroker()); bus.create_topics({"meander.state": 1})
>>> store = memory_store(fakeredis.FakeServer())
>>> guard = StoreGuard(store, bus)
>>> guard.ensure()
True
>>> store.set("model", b"v1"); Changelog(bus, "meander.state").set("model", b"v1")
True
>>> store.flushall()  # Redis restarted without its data
True
>>> guard.ready(), guard.ensure(), store.get("model")
(False, True, b'v1')
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Protocol, cast

import orjson
import redis

from meander import keys, topics
from meander.exceptions import StoreNotReady
from meander.store.changelog import restore

if TYPE_CHECKING:
    from redis.client import Pipeline

    from meander.bus import Bus

__all__ = ["Fence", "StoreGuard"]

log = logging.getLogger(__name__)


class Fence(Protocol):
    """What a write that matters checks in its transaction, and the epoch it is recorded with
    in the changelog (a lease's, or 0)."""

    epoch: int

    def check(self, pipe: Pipeline[bytes]) -> None:
        """WATCH what the write depends on in ``pipe``; raise when it is not as it must be."""


class StoreGuard:
    """Knows whether the store holds its data; restores it from ``topic`` when it does not."""

    epoch = 0

    def __init__(
        self,
        store: redis.Redis[bytes],
        bus: Bus,
        topic: str = topics.STATE,
        *,
        lock_seconds: float = 120.0,
    ) -> None:
        self.store, self.bus, self.topic = store, bus, topic
        self.lock_ms = int(lock_seconds * 1000)
        self._waiting = False

    def ready(self) -> bool:
        """Whether the store holds its data (one EXISTS)."""
        ready = bool(self.store.exists(keys.STORE_READY))
        self._waiting = self._waiting and not ready
        return ready

    def check(self, pipe: Pipeline[bytes]) -> None:
        """WATCH the ready key in ``pipe``. When it is missing, restore the store first (the
        key then changed under the WATCH: the transaction fails and its writer tries again),
        or raise StoreNotReady while another process restores it."""
        pipe.watch(keys.STORE_READY)
        if cast("int", pipe.exists(keys.STORE_READY)) or self.ensure():
            return
        raise StoreNotReady(
            "the store has lost its data (Redis restarted empty?) and another process is "
            "restoring it from Kafka: the write waits for it"
        )

    def ensure(self) -> bool:
        """True once the store holds its data, restoring it here if nobody else is; False
        while another process restores it (ask again in a moment)."""
        if self.ready():
            return True
        token = uuid.uuid4().hex.encode()
        if not self.store.set(keys.STORE_RESTORING, token, nx=True, px=self.lock_ms):
            if not self._waiting:  # once per restore, not on every try
                log.info("waiting for another process to restore the store from %s", self.topic)
            self._waiting = True
            return False
        self._waiting = False
        try:
            started = time.monotonic()
            restored = restore(self.store, self.bus, self.topic)
            seconds = time.monotonic() - started
            marker = {"restored": restored, "seconds": round(seconds, 3), "at": time.time()}
            self.store.set(keys.STORE_READY, orjson.dumps(marker))
        finally:
            if self.store.get(keys.STORE_RESTORING) == token:
                self.store.delete(keys.STORE_RESTORING)
        if restored:
            log.warning(
                "the store had lost its data: %d keys restored from %s in %.2f s",
                restored,
                self.topic,
                seconds,
                extra={"restored": restored, "seconds": round(seconds, 3)},
            )
        return True
