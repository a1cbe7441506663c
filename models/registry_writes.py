"""How the registry writes: one MULTI/EXEC per change, under the store's fence, retried, logged.

A write runs under the fence's WATCH (a write while the store is being restored fails); an
alias change also WATCHes the aliases and the version it changes, so that if another writer
changes them between its reads and EXEC, EXEC fails and the change runs again on fresh values:
no decision is ever applied on a stale view. What an alias change wrote is read back in the same
EXEC and recorded in the changelog. An alias change also writes a token of its own: a connection
cut after EXEC reached Redis loses only the reply (redis-py raises WatchError then), and the
token read on the next attempt says the change was made, so it is not made again (a decision
announced twice, a promotion refused as "already the champion") but only read back and logged.

>>> from meander.store import memory_store
>>> store = memory_store()
>>> writes = RegistryWrites(store, "s", "meander:registry:s:")
>>> writes.guarded(lambda pipe: pipe.set("meander:registry:s:counter", b"1"))
0
>>> store.get("meander:registry:s:counter")
b'1'
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import redis

from meander import keys
from meander.exceptions import RegistryError

if TYPE_CHECKING:
    from redis.client import Pipeline

    from meander.models.registry_log import RegistryLog
    from meander.store.guard import Fence

__all__ = ["MAX_ATTEMPTS", "RegistryWrites"]

MAX_ATTEMPTS = 50  # optimistic retries of one alias change before giving up


class RegistryWrites:
    """The transactions of one stream's registry (keys under ``prefix``) in ``store``."""

    def __init__(
        self,
        store: redis.Redis[bytes],
        stream: str,
        prefix: str,
        *,
        guard: Fence | None = None,
        log: RegistryLog | None = None,
    ) -> None:
        self.store, self.stream, self.prefix, self.guard, self.log = (
            store,
            stream,
            prefix,
            guard,
            log,
        )

    def guarded(
        self,
        write: Callable[[Pipeline[bytes]], None],
        fence: Fence | None = None,
        done: Callable[[list[Any]], None] | None = None,
    ) -> int:
        """``write`` in one MULTI/EXEC under the fence's WATCH; ``done`` gets the results.
        Returns the fence's epoch, the order of the write in the changelog."""
        fence = fence or self.guard
        with self.store.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    if fence is not None:
                        fence.check(pipe)
                        pipe.multi()
                    write(pipe)
                    results = pipe.execute()
                except redis.WatchError:
                    continue
                if done is not None:
                    done(results)
                return 0 if fence is None else fence.epoch
        raise RegistryError(
            f"the registry of stream {self.stream!r} kept changing under {MAX_ATTEMPTS} "
            f"attempts to write; retry when the other writer is done"
        )

    def aliases(
        self,
        change: Callable[[Pipeline[bytes]], tuple[int, ...]],
        version: int,
        fence: Fence | None = None,
    ) -> None:
        """``change`` of the aliases and of ``version``, which returns the versions whose
        metadata it wrote: retried while another writer changes what it read."""
        fence = fence or self.guard
        champion_key, challengers_key = self.prefix + "champion", self.prefix + "challengers"
        watched = (champion_key, challengers_key, f"{self.prefix}meta:{version}")
        token, made = uuid.uuid4().hex.encode(), None
        token_key = keys.alias_change(self.stream)
        with self.store.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    pipe.watch(*watched, token_key)
                    if fence is not None:
                        fence.check(pipe)
                    if made is not None and self._made(pipe, token_key) == token:
                        pipe.multi()  # made by the last attempt, whose reply was lost
                        metas = made
                    else:
                        made = metas = change(pipe)
                        pipe.set(token_key, token, ex=keys.ALIAS_CHANGE_SECONDS)
                    pipe.get(champion_key)
                    pipe.zrange(challengers_key, 0, -1, withscores=True)
                    pipe.mget([f"{self.prefix}meta:{v}" for v in metas])
                    *_, champion, challengers, written = pipe.execute()
                except redis.WatchError:
                    continue
                if self.log is not None:
                    self.log.aliases(
                        champion,
                        {member.decode(): score for member, score in challengers},
                        dict(zip(metas, written, strict=True)),
                    )
                return
        raise RegistryError(
            f"version {version} of stream {self.stream!r} kept changing under {MAX_ATTEMPTS} "
            f"attempts to update it; retry when the other writer is done"
        )

    @staticmethod
    def _made(pipe: Pipeline[bytes], token_key: str) -> bytes | None:
        """The token of the last alias change made (read while watching: executed at once)."""
        return cast("bytes | None", pipe.get(token_key))
