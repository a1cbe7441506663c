"""A claim on a stream that one process holds at a time, with a fencing token.

Two learners of the same stream would train two diverging models and checkpoint over each
other. The lease is a Redis key set only if absent, with an expiry, holding a token whose epoch
rises at every takeover. A thread renews it every second, so a holder's slow step
never lets it lapse while the process lives; a dead holder's claim lapses ``seconds`` after its
last renewal and a standby takes over. Every write the holder makes goes through
:meth:`Lease.fenced`: it runs only if the lease still holds this holder's token, checked in
the same transaction, so a holder that lost its claim (a pause longer than the lease, a
network partition) can never overwrite its successor's work. The transaction WATCHes the epoch
counter, which only a takeover changes, not the lease's key: the holder's own renewals touch
that key every second, and a write that took longer than that (Redis 200 ms away: a few round
trips) was aborted by them on every attempt, so the learner never wrote anything.

A ``holder`` name (the process's instance id: a name no two live processes share) goes into
the token; a process started again under the same name takes its dead predecessor's claim at
once instead of waiting for it to lapse (the predecessor, if it somehow lived on, is fenced off
as any outbid holder is).

>>> import fakeredis
>>> from meander.store.memory import memory_store
>>> store = memory_store(fakeredis.FakeServer())
>>> first, second = Lease(store, "k", 10.0), Lease(store, "k", 10.0)
>>> first.hold(), second.hold(), first.epoch
(True, False, 1)
>>> first.fenced(lambda pipe: pipe.set("owned", b"first"))
>>> first.release(); second.hold(), second.epoch
(True, 2)
>>> first.fenced(lambda pipe: pipe.set("owned", b"late"))
Traceback (most recent call last):
...
meander.exceptions.LeaseLost: the lease k is held by epoch 2, not by this holder (epoch 1)
>>> second.release()
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import redis

from meander.exceptions import LeaseLost

if TYPE_CHECKING:
    from redis.client import Pipeline

    from meander.store.changelog import Changelog

__all__ = ["Guard", "Lease"]

log = logging.getLogger(__name__)
ATTEMPTS = 5  # a watched key changed between WATCH and EXEC (a takeover, a restore): look again


Guard = Callable[["Pipeline[bytes]"], None]


class Lease:
    """Hold ``key`` for this process; ``hold()`` is cheap to call on every step."""

    def __init__(
        self,
        store: redis.Redis[bytes],
        key: str,
        seconds: float,
        *,
        epochs: str | None = None,
        ready: Guard | None = None,
        changelog: Changelog | None = None,
        holder: str | None = None,
    ) -> None:
        """``epochs`` counts the takeovers (``<key>:epoch`` by default); ``ready`` is checked
        in the transaction that takes the lease; ``changelog`` records each epoch in Kafka, so
        that a restored store goes on counting from the highest; ``holder`` names this process
        (see the module docstring)."""
        self.store, self.key = store, key
        self.holder = holder
        self.epochs = epochs or f"{key}:epoch"
        self.ready = ready
        self.changelog = changelog
        self.ttl_ms = max(1, int(seconds * 1000))
        self.epoch = 0
        self.token = b""
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._beat is not None and not self._lost.is_set()

    def hold(self) -> bool:
        """True while this process holds the lease; tries to take it when nobody does."""
        if self._beat is not None and self._lost.is_set():
            self._end_beat()
        if self._beat is None and self._take():
            self._lost.clear()
            self._stop.clear()
            self._beat = threading.Thread(target=self._renew, name=f"lease {self.key}", daemon=True)
            self._beat.start()
        return self.held

    def fenced(self, writes: Callable[[Pipeline[bytes]], object]) -> None:
        """Run ``writes`` (pipeline commands) in one transaction, only if this holder still
        holds the lease at its end; LeaseLost otherwise."""
        with self.store.pipeline(transaction=True) as pipe:
            for _ in range(ATTEMPTS):
                try:
                    self.check(pipe)
                    pipe.multi()
                    writes(pipe)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        raise LeaseLost(f"the lease {self.key} kept changing under {ATTEMPTS} fenced writes")

    def check(self, pipe: Pipeline[bytes]) -> None:
        """WATCH the takeovers in ``pipe`` and raise LeaseLost unless this holder holds the
        lease: whoever takes it next raises the epoch first, which aborts the transaction."""
        pipe.watch(self.epochs)
        holder = cast("bytes | None", pipe.get(self.key))  # immediate: the pipeline watches
        if holder != self.token or not self.token:
            self._lost.set()
            who = "nobody" if holder is None else f"epoch {holder.split(b':')[0].decode()}"
            raise LeaseLost(
                f"the lease {self.key} is held by {who}, not by this holder (epoch {self.epoch})"
            )

    def release(self) -> None:
        self._end_beat()
        if self.token:
            with contextlib.suppress(LeaseLost):
                self.fenced(lambda pipe: pipe.delete(self.key))
        self.token = b""

    def _take(self) -> bool:
        with self.store.pipeline(transaction=True) as pipe:
            for _ in range(ATTEMPTS):  # a WATCHed key changed meanwhile: look again
                try:
                    pipe.watch(self.key)
                    held = cast("bytes | None", pipe.get(self.key))
                    if held is not None and not self._predecessors(held):
                        return False
                    if self.ready is not None:
                        self.ready(pipe)
                    epoch = cast("int", pipe.incr(self.epochs))
                    name = "" if self.holder is None else f":{self.holder}"
                    token = f"{epoch}:{uuid.uuid4().hex}{name}".encode()
                    pipe.multi()
                    pipe.set(self.key, token, px=self.ttl_ms)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
            else:
                return False
        self.epoch, self.token = epoch, token
        if self.changelog is not None:
            self.changelog.set(self.epochs, b"%d" % epoch, order=epoch)
        return True

    def _predecessors(self, token: bytes) -> bool:
        """Whether ``token`` is an earlier process's of this holder's name."""
        if self.holder is None or token == self.token:
            return False
        if token.split(b":", 2)[2:] != [self.holder.encode()]:
            return False
        log.info("lease %s: taking over from %s, an earlier process of this name", self.key, token)
        return True

    def _renew(self) -> None:
        # Every second (or quarter of its life, if shorter): a holder must be stalled for most
        # of the lease's life (no GIL, no Redis) before it lapses.
        interval = min(1.0, self.ttl_ms / 4000)
        while not self._stop.wait(interval):
            try:
                self.fenced(lambda pipe: pipe.pexpire(self.key, self.ttl_ms))
            except LeaseLost as error:
                log.warning("%s", error)
                return
            except redis.RedisError as error:
                # Keep trying while the lease lives: a short outage must not cost the claim.
                log.warning("renewing the lease %s failed: %s", self.key, error)
                time.sleep(min(interval, 0.5))

    def _end_beat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
