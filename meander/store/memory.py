"""The embedded store: fakeredis, an in-process implementation of the Redis API.

All embedded clients in a process share one server, so components see each other's writes as
they would through a real Redis.

>>> store = memory_store()
>>> store.set("meander:doctest", b"1")
True
>>> memory_store().get("meander:doctest")
b'1'
"""

from __future__ import annotations

import fakeredis
import redis

__all__ = ["memory_store"]

_SERVER = fakeredis.FakeServer()


def memory_store(server: fakeredis.FakeServer | None = None) -> redis.Redis[bytes]:
    """A client on ``server``, by default the process-wide embedded one."""
    return fakeredis.FakeRedis(server=server or _SERVER)
