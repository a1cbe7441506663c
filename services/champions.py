"""The champions the service answers synchronous predictions with, reloaded when they change.

Each call asks the registry for the stream's heads (one round trip) and loads the champion only
when its version or revision moved, as predictors do, so a promotion serves from the next
request on. The service never learns: models here are only read, from any worker thread.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from meander.config import Settings
from meander.models.registry import Registry
from meander.models.signing import signer_for

__all__ = ["Champions"]


class Champions:
    """The current champion of each stream: ``current(stream)`` -> (version, model) or None."""

    def __init__(self, store: redis.Redis[bytes], settings: Settings) -> None:
        self.signer = signer = signer_for(settings)
        self.registries = {s.name: Registry(store, s.name, signer) for s in settings.streams}
        self._loaded: dict[str, tuple[int, int, Any]] = {}
        self._lock = threading.Lock()

    def current(self, stream: str) -> tuple[int, Any] | None:
        """The champion's version and model; None while the stream has none."""
        registry = self.registries[stream]
        heads = registry.heads()
        if heads.champion is None:
            return None
        revision = heads.revisions.get(heads.champion, 0)
        loaded = self._loaded.get(stream)
        if loaded is None or loaded[:2] != (heads.champion, revision):
            with self._lock:  # one thread loads; the others then find it loaded
                loaded = self._loaded.get(stream)
                if loaded is None or loaded[:2] != (heads.champion, revision):
                    model, revision = registry.load(heads.champion)
                    loaded = self._loaded[stream] = (heads.champion, revision, model)
        return loaded[0], loaded[2]
