"""A real Redis server on loopback, run from the ``redis-server`` binary of the machine."""

from __future__ import annotations

import redis

from meander.infra.process import LOOPBACK, LocalServer, find_executable

__all__ = ["LocalRedis"]

_FALLBACKS = ["/usr/sbin/redis-server", "/usr/bin/redis-server"]
_HINT = "install Redis with `apt-get install redis-server` (or `brew install redis`)"


class LocalRedis(LocalServer):
    """One Redis server for development and tests, that keeps its data across restarts.

    It writes an append-only file (AOF, synced every second) in its data directory, so a
    restart loses at most the last second of writes; what matters of that (the registry, the
    learners' checkpoints) is also in Kafka and is restored from there when Redis comes back
    empty. A temporary data directory (the default) goes with ``stop()``.

    It is used as a context manager, or with ``start()`` and ``stop()``::

        with LocalRedis() as store:
            redis.Redis.from_url(store.url).ping()

    >>> LocalRedis(port=6390).url
    'redis://127.0.0.1:6390/0'
    """

    name = "redis"

    @property
    def url(self) -> str:
        """The URL for ``redis.Redis.from_url``: ``redis://127.0.0.1:<port>/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def address(self) -> str:
        """Same as ``url``."""
        return self.url

    def _command(self) -> list[str]:
        executable = find_executable("redis-server", _FALLBACKS, _HINT)
        return [
            executable,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            # Redis rewrites its command line by default; ours must stay readable in /proc so
            # that `down` can tell the process is still the one it started.
            "--set-proc-title", "no",
        ]  # fmt: skip

    def _ready(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
