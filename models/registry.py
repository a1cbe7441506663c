"""The model registry: a stream's model versions, its champion and challengers, in Redis.

Each version holds a signed pickle of the model (re-saved as it learns, each save a new
revision) and its metadata: the spec, the parent it was trained from, what caused it, how it was
trained, and its status. Aliases (``champion``, ``challengers``) move in MULTI/EXEC transactions,
so every reader sees either the old or the new state of a promotion, never half of it
(:mod:`~meander.models.aliases`).

Keys, per stream ``S``, under ``meander:registry:S:``: ``counter``, ``versions`` (sorted set),
``meta:N`` (JSON), ``blob:N`` (signed pickle), ``revisions`` (hash N -> revision), ``champion``,
``challengers`` (sorted set), ``unannounced`` (:mod:`~meander.models.unannounced`). Opened
with :meth:`Registry.of`, every write is also recorded in Kafka
(:mod:`~meander.models.registry_log`) after Redis took it, and waits while the store is being
restored from there (the store's guard, checked in the write's transaction).

>>> from meander.store import memory_store
>>> from meander.models.signing import Signer
>>> from meander.models.specs import build_model
>>> registry = Registry(memory_store(), "doctest", Signer(b"sixteen-byte-key"))
>>> spec = "tree.HoeffdingTreeClassifier"
>>> first = registry.register(build_model(spec), spec=spec)
>>> registry.promote(first.version, reason="first model") is None
True
>>> registry.heads().champion == first.version
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from typing import TYPE_CHECKING, Any, NamedTuple

import redis

from meander import keys
from meander.config import STREAM_NAME
from meander.exceptions import RegistryError
from meander.models.aliases import Aliases, Also
from meander.models.blobs import dumps, loads
from meander.models.registry_log import RegistryLog
from meander.models.registry_writes import RegistryWrites
from meander.models.signing import signer_for
from meander.models.unannounced import Unannounced
from meander.models.versions import Heads, ModelVersion

if TYPE_CHECKING:
    from redis.client import Pipeline

    from meander.config import StreamConfig
    from meander.models.signing import Signer
    from meander.runtime import Runtime
    from meander.store.changelog import Changelog
    from meander.store.guard import Fence

__all__ = ["Heads", "ModelVersion", "Registry", "Snapshot"]


class Snapshot(NamedTuple):
    """What :meth:`Registry.snapshots` wrote of one model: its new revision, the blob's size
    in bytes, and the model pickled (unsigned), from which a copy is cheap to make."""

    revision: int
    size: int
    pickled: bytes


class Registry:
    """One stream's model versions in a Redis store (or the embedded fakeredis, same API)."""

    def __init__(
        self,
        store: redis.Redis[bytes],
        stream: str,
        signer: Signer,
        *,
        changelog: Changelog | None = None,
        guard: Fence | None = None,
    ) -> None:
        """``changelog`` records every write in Kafka; ``guard`` is checked in each write's
        transaction unless the write names a fence of its own (a learner's lease)."""
        if not STREAM_NAME.match(stream):
            raise RegistryError(f"{stream!r} is not a stream name: use letters, digits, '_', '-'")
        self.store = store
        self.stream = stream
        self.signer = signer
        self.guard = guard
        self._prefix = keys.registry(stream)
        self._log = None if changelog is None else RegistryLog(changelog, self._prefix)
        self._writes = RegistryWrites(store, stream, self._prefix, guard=guard, log=self._log)
        self._aliases = Aliases(stream, self._prefix, self._writes, self._unknown)
        self.unannounced = Unannounced(self._writes, changelog)
        """Its decisions not yet announced on ``meander.models``."""
        self._known: set[int] = set()  # versions seen to exist; they are never deleted

    @classmethod
    def of(cls, runtime: Runtime, stream: StreamConfig | str) -> Registry:
        """The registry of ``stream`` in the runtime's store, its writes recorded in Kafka."""
        name = stream if isinstance(stream, str) else stream.name
        signer = signer_for(runtime.settings)
        return cls(runtime.store, name, signer, changelog=runtime.changelog, guard=runtime.guard)

    def register(
        self,
        model: Any,
        *,
        spec: str,
        parent: int | None = None,
        cause: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        config_hash: str = "",
        fence: Fence | None = None,
    ) -> ModelVersion:
        """Store ``model`` as a new version with status ``registered`` and revision 1.

        ``fence`` (as for every write) is checked in the write's transaction: a lease this
        writer must still hold; the registry's guard when None."""
        if parent is not None:
            self._require(parent)
        version = int(self.store.incr(self._key("counter")))
        entry = ModelVersion(
            stream=self.stream,
            version=version,
            spec=spec,
            status="registered",
            parent=parent,
            cause=dict(cause or {}),
            training=dict(training or {}),
            metrics={},
            river_version=installed_version("river"),
            config_hash=config_hash,
            created_at=datetime.now(UTC),
            promoted_at=None,
            revision=1,
            reason="registered",
        )
        blob, meta = self._sign(version, model), entry.meta()

        def write(pipe: Pipeline[bytes]) -> None:
            pipe.set(self._key(f"blob:{version}"), blob)
            pipe.set(self._key(f"meta:{version}"), meta)
            pipe.hset(self._key("revisions"), str(version), 1)
            pipe.zadd(self._key("versions"), {str(version): version})

        order = self._writes.guarded(write, fence)
        if self._log is not None:
            self._log.version(version, meta=meta, blob=blob, order=order)
        self._known.add(version)
        return entry

    def save(
        self, version: int, model: Any, *, fence: Fence | None = None, logged: bool = True
    ) -> int:
        """Store a new snapshot of ``version``'s model; returns its new revision.

        ``logged=False`` leaves it out of Kafka: a writer that saves often records only some."""
        return self.snapshot(version, model, fence=fence, logged=logged)[0]

    def snapshot(
        self, version: int, model: Any, *, fence: Fence | None = None, logged: bool = True
    ) -> tuple[int, int]:
        """:meth:`save`, returning ``(revision, bytes)``: what a snapshot of this model costs
        to write and to load grows with its size."""
        written = self.snapshots({version: model}, fence=fence, logged={version} if logged else ())
        return written[version].revision, written[version].size

    def snapshots(
        self,
        models: Mapping[int, Any],
        *,
        fence: Fence | None = None,
        logged: Collection[int] = (),
        also: Callable[[Pipeline[bytes]], object] | None = None,
    ) -> dict[int, Snapshot]:
        """Snapshots of several versions, and the writes ``also`` adds, in one transaction (one
        round trip, one check of the fence). Those in ``logged`` are recorded in Kafka too."""
        for version in models:
            if version not in self._known:
                self._require(version)
        pickled = {version: dumps(model) for version, model in models.items()}
        blobs = {
            version: self.signer.sign(data, context=self._context(version))
            for version, data in pickled.items()
        }
        revisions: dict[int, int] = {}

        def write(pipe: Pipeline[bytes]) -> None:
            for version, blob in blobs.items():
                pipe.set(self._key(f"blob:{version}"), blob)
                pipe.hincrby(self._key("revisions"), str(version), 1)
            if also is not None:
                also(pipe)

        def saved(results: list[Any]) -> None:
            for index, version in enumerate(blobs):
                revisions[version] = int(results[2 * index + 1])

        order = self._writes.guarded(write, fence, saved)
        for version, blob in blobs.items():
            if self._log is not None and version in logged:
                self._log.snapshot(version, blob=blob, revision=revisions[version], order=order)
        return {
            version: Snapshot(revisions[version], len(blob), pickled[version])
            for version, blob in blobs.items()
        }

    def load(self, version: int) -> tuple[Any, int]:
        """``(model, revision)`` of ``version``; the blob is verified before it is unpickled."""
        return self.load_many([version])[version]

    def load_many(self, versions: Collection[int]) -> dict[int, tuple[Any, int]]:
        """:meth:`load` of several versions in one round trip; RegistryError when one of
        them cannot be loaded."""
        with self.store.pipeline(transaction=True) as pipe:
            for version in versions:
                pipe.get(self._key(f"blob:{version}"))
                pipe.hget(self._key("revisions"), str(version))
            results = pipe.execute()
        loaded: dict[int, tuple[Any, int]] = {}
        for index, version in enumerate(versions):
            blob, revision = results[2 * index], results[2 * index + 1]
            if blob is None:
                raise self._unknown(version)
            data = self.signer.verify(blob, context=self._context(version))
            loaded[version] = loads(data), int(revision)
        return loaded

    def get(self, version: int) -> ModelVersion:
        """The metadata of ``version``."""
        with self.store.pipeline(transaction=True) as pipe:
            pipe.get(self._key(f"meta:{version}"))
            pipe.hget(self._key("revisions"), str(version))
            meta, revision = pipe.execute()
        if meta is None:
            raise self._unknown(version)
        return ModelVersion.from_meta(meta, revision)

    def versions(self) -> list[ModelVersion]:
        """Every version of the stream, oldest first."""
        numbers = self._version_numbers()
        if not numbers:
            return []
        with self.store.pipeline(transaction=True) as pipe:
            pipe.mget([self._key(f"meta:{n}") for n in numbers])
            pipe.hgetall(self._key("revisions"))
            metas, revisions = pipe.execute()
        return [
            ModelVersion.from_meta(meta, revisions.get(str(n).encode()))
            for n, meta in zip(numbers, metas, strict=True)
            if meta
        ]

    def lineage(self, version: int) -> list[ModelVersion]:
        """``version``, its parent, the parent's parent, and so on to the first model."""
        chain = [self.get(version)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return chain

    def champion(self) -> int | None:
        """The version predictors serve, or None before the first promotion."""
        value = self.store.get(self._key("champion"))
        return None if value is None else int(value)

    def challengers(self) -> tuple[int, ...]:
        """The versions racing the champion in shadow, oldest first."""
        return tuple(int(v) for v in self.store.zrange(self._key("challengers"), 0, -1))

    def heads(self) -> Heads:
        """Champion, challengers and their revisions, read in one round trip.

        A predictor polls this on every batch and reloads a model whose revision moved.
        """
        with self.store.pipeline(transaction=True) as pipe:
            pipe.get(self._key("champion"))
            pipe.zrange(self._key("challengers"), 0, -1)
            pipe.hgetall(self._key("revisions"))
            champion_raw, challengers_raw, revisions_raw = pipe.execute()
        champion = None if champion_raw is None else int(champion_raw)
        challengers = tuple(int(v) for v in challengers_raw)
        live = {champion, *challengers}
        revisions = {int(v): int(r) for v, r in revisions_raw.items() if int(v) in live}
        published = any(int(r) > 1 for r in revisions_raw.values())
        return Heads(champion, challengers, revisions, published)

    def add_challenger(self, version: int, reason: str = "") -> None:
        """Make ``version`` a challenger: predictors run it in shadow next to the champion."""
        self._require(version)
        self._aliases.add_challenger(version, reason)

    def reject(self, version: int, reason: str, *, also: Also | None = None) -> None:
        """Take ``version`` out of the race with status ``rejected``.

        ``also`` (as for every alias change) adds writes to the change's transaction, given the
        champion before it: the decision's announcement (:attr:`unannounced`), say."""
        self._require(version)
        self._aliases.reject(version, reason, also)
        self._announcing(also)

    def promote(
        self,
        version: int,
        *,
        metrics: Mapping[str, float] | None = None,
        reason: str = "",
        fence: Fence | None = None,
        also: Also | None = None,
    ) -> int | None:
        """Make ``version`` the champion; the previous one is ``retired`` and returned."""
        self._require(version)
        aliases, why = self._aliases, reason or "promoted"
        previous = aliases.replace_champion(version, "retired", metrics, why, fence, also)
        self._announcing(also)
        return previous

    def roll_back(self, to_version: int, *, reason: str, also: Also | None = None) -> int:
        """Hand the champion alias back to ``to_version``; returns the demoted (rolled_back) one."""
        self._require(to_version)
        demoted = self._aliases.replace_champion(
            to_version, "rolled_back", None, reason, None, also
        )
        if demoted is None:  # replace_champion refuses this case before changing anything
            raise AssertionError("roll_back changed a registry without a champion")
        self._announcing(also)
        return demoted

    def _announcing(self, also: Also | None) -> None:
        if also is not None:  # it may have queued announcements
            self.unannounced.recorded()

    def _require(self, version: int) -> None:
        if self.store.zscore(self._key("versions"), str(version)) is None:
            raise self._unknown(version)
        self._known.add(version)

    def _unknown(self, version: object) -> RegistryError:
        known = ", ".join(str(n) for n in self._version_numbers()) or "none yet"
        return RegistryError(
            f"stream {self.stream!r} has no model version {version!r}; known versions: {known}"
        )

    def _version_numbers(self) -> list[int]:
        return [int(v) for v in self.store.zrange(self._key("versions"), 0, -1)]

    def _sign(self, version: int, model: Any) -> bytes:
        return self.signer.sign(dumps(model), context=self._context(version))

    def _context(self, version: int) -> bytes:
        return f"{self._prefix}{version}".encode()

    def _key(self, name: str) -> str:
        return self._prefix + name
