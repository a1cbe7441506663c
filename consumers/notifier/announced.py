"""Whom the notifier told of which event, so that each subscriber is told once.

Per event id, a Redis hash (:func:`meander.keys.announced`, kept ``remember_seconds``) holds a
field per subscriber:

- ``redis``: the event is on the pub/sub channels and in the capped log;
- ``<webhook key>`` (:attr:`Webhook.key`): the id of the notifier that queued the delivery while
  it is under way, ``done`` once it ended (delivered, or failed for good and dead-lettered).

:meth:`Announcements.announce` writes the Redis announcements and these records in one
MULTI/EXEC, WATCHing the events' hashes: an event read again (its commit failed, the notifier
restarted, another took the partition over) is never announced on Redis twice, and its webhook
deliveries are queued again only when they had not ended and were queued by another notifier
(whose queue went with it). A notifier killed between a receiver's answer and the ``done``
(milliseconds) has that delivery made again; ``X-Meander-Event-Id`` lets the receiver drop it.

>>> import fakeredis
>>> from meander.store import memory_store
>>> from meander.consumers.notifier.webhooks import Webhook
>>> class Event:
...     event_id = "e1"
>>> def tell(pipe, notice):  # what the notifier adds: PUBLISH and XADD
...     print("told", notice.event_id)
>>> hook, event = Webhook("https://hooks.example/in"), Event()
>>> first = Announcements(memory_store(fakeredis.FakeServer()), instance="n1", remember=60)
>>> told, deliveries = first.announce([event], lambda n: [hook], tell)
told e1
>>> told, [(h.label, n.event_id) for h, n in deliveries]
(1, [('https://hooks.example/in', 'e1')])
>>> first.announce([event], lambda n: [hook], tell)  # read again: nothing twice
(0, [])
>>> second = Announcements(first.store, instance="n2", remember=60)
>>> told, deliveries = second.announce([event], lambda n: [hook], tell)  # n1's queue is gone
>>> told, len(deliveries)
(0, 1)
>>> second.ended(deliveries)
>>> first.announce([event], lambda n: [hook], tell)
(0, [])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import redis
from redis.client import Pipeline

from meander import keys
from meander.consumers.notifier.webhooks import Webhook

__all__ = ["Announcements"]

REDIS = "redis"
DONE = b"done"


class Told(Protocol):
    """What is announced: anything with an event id (a notice)."""

    @property
    def event_id(self) -> str: ...


N = TypeVar("N", bound=Told)


class Announcements:
    """The records of one notifier, ``instance``, in ``store``."""

    def __init__(self, store: redis.Redis[bytes], *, instance: str, remember: float) -> None:
        self.store = store
        self.instance = instance
        self.remember = int(remember)

    def announce(
        self,
        notices: Sequence[N],
        targets: Callable[[N], Sequence[Webhook]],
        on_redis: Callable[[Pipeline[bytes], N], None],
    ) -> tuple[int, list[tuple[Webhook, N]]]:
        """Announce on Redis (``on_redis`` adds the commands) each notice never announced
        there, record it, and record as queued by this notifier every delivery to make;
        returns how many were announced on Redis and the deliveries, for the caller to queue.
        All of it or nothing."""
        if not notices:
            return 0, []
        names = [keys.announced(notice.event_id) for notice in notices]
        with self.store.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*set(names))
                    states = self._states(names)
                    pipe.multi()
                    told, deliveries = self._plan(pipe, notices, names, states, targets, on_redis)
                    pipe.execute()
                    return told, deliveries
                except redis.WatchError:
                    continue  # another notifier wrote one of these meanwhile: look again

    def ended(self, deliveries: Sequence[tuple[Webhook, Told]]) -> None:
        """Record that each (webhook, notice) delivery ended."""
        if not deliveries:
            return
        with self.store.pipeline(transaction=False) as pipe:
            for hook, notice in deliveries:
                pipe.hset(keys.announced(notice.event_id), hook.key, DONE)
            pipe.execute()

    def _states(self, names: list[str]) -> list[dict[bytes, bytes]]:
        # Read after WATCH on another connection: a write between here and EXEC aborts it.
        with self.store.pipeline(transaction=False) as reads:
            for name in names:
                reads.hgetall(name)
            return reads.execute()  # type: ignore[no-any-return]

    def _plan(
        self,
        pipe: Pipeline[bytes],
        notices: Sequence[N],
        names: list[str],
        states: list[dict[bytes, bytes]],
        targets: Callable[[N], Sequence[Webhook]],
        on_redis: Callable[[Pipeline[bytes], N], None],
    ) -> tuple[int, list[tuple[Webhook, N]]]:
        told, deliveries = 0, []
        planned: set[tuple[str, str]] = set()  # an id twice in one batch is one event
        now = str(time.time())
        mine = self.instance.encode()
        for notice, name, state in zip(notices, names, states, strict=True):
            if (notice.event_id, REDIS) not in planned and REDIS.encode() not in state:
                on_redis(pipe, notice)
                pipe.hset(name, REDIS, now)
                told += 1
            planned.add((notice.event_id, REDIS))
            for hook in targets(notice):
                owner = state.get(hook.key.encode())
                if (notice.event_id, hook.key) in planned or owner in (DONE, mine):
                    continue
                planned.add((notice.event_id, hook.key))
                pipe.hset(name, hook.key, self.instance)
                deliveries.append((hook, notice))
            pipe.expire(name, self.remember)
        return told, deliveries
