"""The registry's aliases: which version predictors serve (``champion``) and which race it in
shadow (``challengers``), and the decisions that move them.

Each change reads what it needs under WATCH and writes the aliases and the metadata of the
versions it moves in one MULTI/EXEC (:meth:`RegistryWrites.aliases`): a reader sees the state
before a promotion or after it, never half of it, and a change made on a stale view runs again.

>>> import fakeredis
>>> from meander.store import memory_store
>>> from meander.models.registry_writes import RegistryWrites
>>> from meander.models.versions import ModelVersion
>>> store, prefix = memory_store(fakeredis.FakeServer()), "meander:registry:s:"
>>> for version in (1, 2):
...     entry = ModelVersion("s", version, "tree", "registered")
...     _ = store.set(f"{prefix}meta:{version}", entry.meta())
>>> aliases = Aliases("s", prefix, RegistryWrites(store, "s", prefix), unknown=KeyError)
>>> aliases.replace_champion(1, "retired", None, "first") is None
True
>>> aliases.replace_champion(2, "retired", None, "better"), store.get(f"{prefix}champion")
(1, b'2')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from meander.exceptions import RegistryError
from meander.models.versions import ModelVersion, Status

if TYPE_CHECKING:
    from redis.client import Pipeline

    from meander.models.registry_writes import RegistryWrites
    from meander.store.guard import Fence

__all__ = ["Aliases", "Also"]

Also = Callable[["Pipeline[bytes]", int | None], object]
"""Writes a caller adds to an alias change's transaction, given the champion before it."""


class Aliases:
    """The aliases of one stream's registry (keys under ``prefix``), changed through ``writes``;
    ``unknown(version)`` is the error for a version the registry does not hold."""

    def __init__(
        self,
        stream: str,
        prefix: str,
        writes: RegistryWrites,
        unknown: Callable[[int], Exception],
    ) -> None:
        self.stream, self.prefix, self.writes, self.unknown = stream, prefix, writes, unknown

    def add_challenger(self, version: int, reason: str) -> None:
        """Make ``version`` a challenger: predictors run it in shadow next to the champion."""

        def change(pipe: Pipeline[bytes]) -> tuple[int, ...]:
            entry = self._watched(pipe, version)
            if entry.version == self._champion(pipe):
                raise RegistryError(
                    f"version {version} of stream {self.stream!r} is the champion; a champion "
                    f"cannot also be a challenger"
                )
            pipe.multi()
            pipe.zadd(self.prefix + "challengers", {str(version): version})
            self._set_status(pipe, entry, "challenger", reason or "challenger")
            return (version,)

        self.writes.aliases(change, version)

    def reject(self, version: int, reason: str, also: Also | None = None) -> None:
        """Take ``version`` out of the race with status ``rejected``."""

        def change(pipe: Pipeline[bytes]) -> tuple[int, ...]:
            entry = self._watched(pipe, version)
            champion = self._champion(pipe)
            if entry.version == champion:
                raise RegistryError(
                    f"version {version} of stream {self.stream!r} is the champion; roll back to "
                    f"another version instead of rejecting it"
                )
            pipe.multi()
            pipe.zrem(self.prefix + "challengers", str(version))
            self._set_status(pipe, entry, "rejected", reason)
            if also is not None:
                also(pipe, champion)
            return (version,)

        self.writes.aliases(change, version)

    def replace_champion(
        self,
        version: int,
        demoted_status: Status,
        metrics: Mapping[str, float] | None,
        reason: str,
        fence: Fence | None = None,
        also: Also | None = None,
    ) -> int | None:
        """Make ``version`` the champion, the previous one (returned) ``demoted_status``."""
        previous: int | None = None

        def change(pipe: Pipeline[bytes]) -> tuple[int, ...]:
            nonlocal previous
            entry = self._watched(pipe, version)
            previous = self._champion(pipe)
            if previous == version:
                raise RegistryError(
                    f"version {version} of stream {self.stream!r} is already the champion"
                )
            if demoted_status == "rolled_back" and previous is None:
                raise RegistryError(
                    f"stream {self.stream!r} has no champion to roll back; promote a version"
                )
            old = self._watched(pipe, previous) if previous is not None else None
            pipe.multi()
            pipe.set(self.prefix + "champion", str(version))
            pipe.zrem(self.prefix + "challengers", str(version))
            promoted = entry.replace(
                status="champion", reason=reason, promoted_at=datetime.now(UTC)
            )
            if metrics is not None:
                promoted = promoted.replace(metrics=dict(metrics))
            pipe.set(f"{self.prefix}meta:{version}", promoted.meta())
            if also is not None:
                also(pipe, previous)
            if old is not None:
                self._set_status(pipe, old, demoted_status, reason)
                return (version, old.version)
            return (version,)

        self.writes.aliases(change, version, fence)
        return previous

    def _watched(self, pipe: Pipeline[bytes], version: int) -> ModelVersion:
        pipe.watch(f"{self.prefix}meta:{version}")
        meta = cast("bytes | None", pipe.get(f"{self.prefix}meta:{version}"))
        if meta is None:
            raise self.unknown(version)
        return ModelVersion.from_meta(meta)

    def _champion(self, pipe: Pipeline[bytes]) -> int | None:
        value = cast("bytes | None", pipe.get(self.prefix + "champion"))
        return None if value is None else int(value)

    def _set_status(
        self, pipe: Pipeline[bytes], entry: ModelVersion, status: Status, reason: str
    ) -> None:
        pipe.set(
            f"{self.prefix}meta:{entry.version}", entry.replace(status=status, reason=reason).meta()
        )
