"""A claim on a stream that one process holds at a time, kept alive by renewing it.

Two learners of the same stream would train two diverging models and checkpoint over each
other. The lease is a Redis key set only if absent, with an expiry: the holder renews it, and
when the holder dies the claim lapses after ``seconds`` and a standby takes over.

>>> from meander.store.memory import memory_store
>>> store = memory_store()
>>> first, second = Lease(store, "k", 10.0), Lease(store, "k", 10.0)
>>> first.hold(), second.hold()
(True, False)
>>> first.release(); second.hold()
True
"""

from __future__ import annotations

import time
import uuid

import redis

__all__ = ["Lease"]


class Lease:
    """Hold ``key`` for this process; ``hold()`` is cheap to call on every step."""

    def __init__(self, store: redis.Redis[bytes], key: str, seconds: float) -> None:
        self.store, self.key = store, key
        self.ttl_ms = max(1, int(seconds * 1000))
        self.token = uuid.uuid4().hex.encode()
        self._renewed = 0.0
        self.held = False

    def hold(self) -> bool:
        """True while this process holds the lease (renewing it every third of its life)."""
        now = time.monotonic()
        if self.held and now - self._renewed < self.ttl_ms / 3000:
            return True
        if self.held and self.store.get(self.key) == self.token:
            self.store.pexpire(self.key, self.ttl_ms)
        else:
            self.held = bool(self.store.set(self.key, self.token, nx=True, px=self.ttl_ms))
        self._renewed = now
        return self.held

    def release(self) -> None:
        if self.held and self.store.get(self.key) == self.token:
            self.store.delete(self.key)
        self.held = False
