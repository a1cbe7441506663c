"""Decisions the registry holds whose announcement ``meander.models`` has not acknowledged yet.

A decision (a promotion, a rollback, a rejection, the end of a watch) changes the registry and is
announced on ``meander.models``, which the learner follows and the notifier records. Made one
after the other, a kill or an outage between the two would leave the registry changed and the
loop unaware: the learner keeping the replaced champion while predictors serve the new one. So
a decision's announcement, its CloudEvents id and time fixed, is written in the same MULTI/EXEC
as the change (:meth:`Unannounced.add`). Whoever decided publishes it; the trainer publishes
every one still :meth:`~Unannounced.pending` at each step; once the broker acknowledged it, it
is dropped (:meth:`~Unannounced.done`). An announcement may so be published twice, always under
the same id (the notifier tells each subscriber of an id once; the learner following a decision
it follows already changes nothing); it is not lost.

Kept in the sorted set ``meander:registry:S:unannounced`` in the order decided, and recorded in
the store's changelog.

>>> import fakeredis
>>> from meander.store import memory_store
>>> from meander.events import decision
>>> from meander.models.registry_writes import RegistryWrites
>>> store = memory_store(fakeredis.FakeServer())
>>> unannounced = Unannounced(RegistryWrites(store, "s", "meander:registry:s:"))
>>> made = Announcement.of(decision("s", "promoted", 2, 1, "it won", {}), source="/doc")
>>> unannounced.write([made])
>>> [(a.id == made.id, a.event.action) for a in unannounced.pending()]
[(True, 'promoted')]
>>> unannounced.done([made]); unannounced.pending()
[]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from meander import topics
from meander.bus import Record
from meander.events import ModelEvent, encode, new_id

if TYPE_CHECKING:
    from redis.client import Pipeline

    from meander.bus import Outbox
    from meander.models.registry_writes import RegistryWrites
    from meander.store.changelog import Changelog

__all__ = ["Announcement", "Herald", "Unannounced"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    """A decision's announcement: the event, and the id, time and source it is published with."""

    id: str
    time: datetime
    source: str
    event: ModelEvent
    member: bytes  # as stored: the same bytes from writing to dropping

    @classmethod
    def of(cls, event: ModelEvent, *, source: str, id: str | None = None) -> Announcement:
        """``event`` announced now, under ``id`` (a new one when None)."""
        ms = time.time_ns() // 1_000_000
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        id = id or new_id()
        body = {"id": id, "time": ms, "source": source, "event": event.model_dump(mode="json")}
        return cls(id, moment, source, event, orjson.dumps(body))

    @classmethod
    def stored(cls, member: bytes) -> Announcement:
        """The announcement ``member`` holds."""
        body = orjson.loads(member)
        moment = datetime.fromtimestamp(body["time"] / 1000, UTC)
        event = ModelEvent.model_validate(body["event"])
        return cls(body["id"], moment, body["source"], event, member)

    def record(self) -> Record:
        """The record that announces it on ``meander.models``."""
        subject, source = self.event.stream, self.source
        return encode(
            topics.MODELS,
            self.event,
            source=source,
            subject=subject,
            event_id=self.id,
            time=self.time,
        )


class Unannounced:
    """The unannounced decisions of one stream's registry, written through ``writes`` (under
    its fence) and recorded in ``changelog``."""

    def __init__(self, writes: RegistryWrites, changelog: Changelog | None = None) -> None:
        self.writes, self.changelog = writes, changelog
        self.key = writes.prefix + "unannounced"
        self._unreadable: set[bytes] = set()

    def add(self, pipe: Pipeline[bytes], announcements: Sequence[Announcement]) -> None:
        """Queue ``announcements`` in a transaction under way (after MULTI), in their order."""
        for index, announcement in enumerate(announcements):
            order = announcement.time.timestamp() * 1000 + index / 64
            pipe.zadd(self.key, {announcement.member: order})

    def write(
        self,
        announcements: Sequence[Announcement],
        also: Callable[[Pipeline[bytes]], object] | None = None,
    ) -> None:
        """Queue ``announcements`` of a decision that changes no alias, with the writes
        ``also`` adds, in one transaction."""

        def write(pipe: Pipeline[bytes]) -> None:
            self.add(pipe, announcements)
            if also is not None:
                also(pipe)

        self.writes.guarded(write)
        self.recorded()

    def pending(self) -> list[Announcement]:
        """What is still to be announced, oldest first. One this version cannot read (another
        version's, with an action it does not know) is left for a reader that can."""
        pending = []
        for member in self.writes.store.zrange(self.key, 0, -1):
            try:
                pending.append(Announcement.stored(member))
            except (ValueError, KeyError, TypeError) as error:
                if member not in self._unreadable:  # said once, not at every step
                    self._unreadable.add(member)
                    log.warning("%s: a decision cannot be read (%s); left", self.key, error)
        return pending

    def done(self, announcements: Iterable[Announcement]) -> None:
        """Drop ``announcements``: the broker acknowledged them."""
        members = [announcement.member for announcement in announcements]
        if members:
            self.writes.guarded(lambda pipe: _drop(pipe, self.key, members))
            self.recorded()

    def recorded(self) -> None:
        """Record what is pending in the changelog, so that a restored store announces it."""
        if self.changelog is not None:
            pending = self.writes.store.zrange(self.key, 0, -1, withscores=True)
            self.changelog.zset(self.key, {member.decode(): score for member, score in pending})


class Herald:
    """Publishes a stream's pending decisions through ``outbox``, each handed to it once: one
    not acknowledged yet (the broker gone) is waited on again at the next call, never sent
    twice, and every one is dropped from ``queue`` once the broker has it."""

    def __init__(self, queue: Unannounced, outbox: Outbox) -> None:
        self.queue, self.outbox = queue, outbox
        self._sent: dict[str, Announcement] = {}  # in the outbox, by id

    def publish(
        self,
        pending: Iterable[Announcement],
        counted: Callable[[Announcement], Callable[[], None] | None] = lambda _: None,
    ) -> list[Announcement]:
        """Publish ``pending`` (``counted`` gives what to call once one is stored) and wait for
        the broker; the announcements it acknowledged. BusUnavailable when it did not."""
        for announcement in pending:
            if announcement.id not in self._sent:
                self._sent[announcement.id] = announcement
                self.outbox.add([announcement.record()], counted(announcement))
        if self.outbox:
            self.outbox.flush()
        published = list(self._sent.values())
        self.queue.done(published)
        self._sent.clear()
        return published


def _drop(pipe: Pipeline[bytes], key: str, members: list[bytes]) -> None:
    pipe.zrem(key, *members)
