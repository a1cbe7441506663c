"""The store: Redis in production, an in-process Redis for the demo and unit tests.

Both speak the redis-py client API, so everything above the store (registry, checkpoints,
subscriptions) runs one code path; :func:`open_store` picks the backend from the settings.
:mod:`meander.store.lease` is a claim one process holds at a time (a stream's learner).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meander.store.redis import redis_store, writable

if TYPE_CHECKING:
    import redis

    from meander.config import Settings
    from meander.store.memory import memory_store

__all__ = ["memory_store", "open_store", "redis_store", "writable"]


def __getattr__(name: str) -> Any:
    # The embedded store's fakeredis is imported only by a process that uses it.
    if name == "memory_store":
        from meander.store.memory import memory_store

        return memory_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: Settings) -> redis.Redis[bytes]:
    """A client for ``redis_url``, checked to answer, or the process-wide embedded store."""
    if settings.redis_url is None:
        from meander.store.memory import memory_store

        return memory_store()
    return redis_store(settings.redis_url, timeout=settings.redis_timeout_seconds)
