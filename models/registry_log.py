"""The registry's writes, recorded in the store's changelog so that Kafka can restore them.

Each record is keyed by the Redis key (and hash field or set member) the registry wrote, with
the value it wrote, so that :func:`~meander.store.changelog.restore` needs to know nothing about
the registry. Versions are never deleted, so a version's metadata, its blob, its revision and
its place in ``versions`` are recorded one by one; the aliases are recorded whole after every
change. The counter is recorded with its value as its order: the highest one is restored, so
a restored registry never hands out a version number twice.

>>> from meander.bus import MemoryBroker, MemoryBus, TopicPartition
>>> from meander.store.changelog import Changelog
>>> bus = MemoryBus(MemoryBroker()); bus.create_topics({"meander.state": 1})
>>> log = RegistryLog(Changelog(bus, "meander.state"), "meander:registry:s:")
>>> log.version(3, meta=b"{}", blob=b"model", order=0)
>>> recorded = bus.assign([TopicPartition("meander.state", 0)]).consume(10, 0.1)
>>> [m.key.decode().removeprefix("meander:registry:s:").replace("\\x00", "/") for m in recorded]
['counter', 'meta:3', 'blob:3', 'revisions/3', 'versions/3']
"""

from __future__ import annotations

from collections.abc import Mapping

from meander.store.changelog import Changelog

__all__ = ["RegistryLog"]


class RegistryLog:
    """Records one stream's registry writes (keys under ``prefix``) in ``changelog``."""

    def __init__(self, changelog: Changelog, prefix: str) -> None:
        self.changelog, self.prefix = changelog, prefix

    def version(self, version: int, *, meta: bytes, blob: bytes, order: int) -> None:
        """A new version, at revision 1; ``order`` is its writer's lease epoch (0 unfenced)."""
        log, key = self.changelog, self.prefix
        log.set(f"{key}counter", b"%d" % version, order=version)
        log.set(f"{key}meta:{version}", meta)
        self.snapshot(version, blob=blob, revision=1, order=order)
        log.zadd(f"{key}versions", str(version), version)

    def snapshot(self, version: int, *, blob: bytes, revision: int, order: int) -> None:
        """A new revision of ``version``'s model."""
        self.changelog.set(f"{self.prefix}blob:{version}", blob, order=order)
        self.changelog.hset(f"{self.prefix}revisions", str(version), b"%d" % revision, order=order)

    def aliases(
        self, champion: bytes | None, challengers: Mapping[str, float], metas: Mapping[int, bytes]
    ) -> None:
        """The aliases as they are after a change, and the metadata the change rewrote."""
        key = self.prefix
        for version, meta in metas.items():
            self.changelog.set(f"{key}meta:{version}", meta)
        if champion is None:
            self.changelog.delete(f"{key}champion")
        else:
            self.changelog.set(f"{key}champion", champion)
        self.changelog.zset(f"{key}challengers", challengers)
