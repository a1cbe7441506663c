"""The notifier: alerts and model lifecycle events, delivered to people and programs.

It reads ``meander.alerts`` and ``meander.models`` and turns each event into CloudEvents
structured-mode JSON, which it

- publishes on Redis pub/sub, on ``meander:alerts`` (or ``meander:models``) and on the
  per-stream channel ``meander:alerts:{stream}``;
- appends to the capped Redis stream ``meander:alerts:log`` (or ``meander:models:log``), fields
  ``id``, ``kind``, ``stream`` and ``event``, from which a late subscriber catches up;
- POSTs to every configured webhook and every subscription
  (:mod:`meander.consumers.notifier.subscriptions`) whose filters match, signed (see
  :mod:`meander.consumers.notifier.webhooks`), and records how each delivery to a subscription
  ended.

Notifiers share a consumer group, so each event is delivered by one of them however many run.
Each reloads the subscriptions when their revision counter moved, checked after every read, so
a subscription made before an event was published receives it.

Each event is announced once per subscriber (:mod:`meander.consumers.notifier.announced`): the
Redis announcement and its record are written together, and an event read again (a failed
commit, a restart, another notifier taking its partition over) is never announced twice. The
group commits an event only once its deliveries have ended
(:mod:`meander.consumers.notifier.progress`), so a notifier killed with deliveries queued
loses none: whoever reads those events next makes them.

>>> import fakeredis
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.config import Settings
>>> from meander.events import encode
>>> from meander.store import memory_store
>>> runtime = Runtime(Settings(), MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
>>> runtime.bus.create_topics(topics.layout([]))
>>> alert = Alert(kind="data_drift", stream="fraud", severity="warning", statistic="psi", value=0.3)
>>> _ = runtime.bus.publish([encode(topics.ALERTS, alert, source="/meander/monitor")])
>>> notifier = Notifier(runtime)
>>> notifier.step(0.1), notifier.published
(1, 1)
>>> [entry[b"kind"] for _, entry in runtime.store.xrange("meander:alerts:log")]
[b'data_drift']
>>> notifier.close()
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from meander import keys, topics
from meander.bus import Message, TopicPartition
from meander.component import Component, rewound_on_failure
from meander.consumers.notifier.announced import Announcements
from meander.consumers.notifier.deliveries import Delivery, Outcome, Webhooks
from meander.consumers.notifier.progress import Progress
from meander.consumers.notifier.subscriptions import Subscriptions
from meander.consumers.notifier.webhooks import Notice, Webhook, structured
from meander.deadletter import DeadLetters
from meander.events import Alert, Envelope, ModelEvent, decode_batch
from meander.exceptions import BusError
from meander.runtime import Runtime
from meander.telemetry import LagSampler
from meander.telemetry.metrics import BATCH_SIZE, EVENTS_CONSUMED

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["LOG_LENGTH", "Notifier", "structured"]

log = logging.getLogger(__name__)

LOG_LENGTH = 10_000  # entries a late subscriber can catch up on, per log stream


class Notifier(Component):
    """Announces every alert and model event on Redis and to the configured webhooks.

    ``capacity`` bounds each webhook's outbox: when one is full, the notifier reads nothing
    more until it drains, rather than hold an unbounded backlog in memory. ``close_timeout``
    is how long :meth:`close` waits for queued deliveries; ``backoff`` (default
    ``notifier.backoff_seconds``) is the first retry delay,
    doubled at each retry.
    """

    name = "notifier"

    def __init__(
        self,
        runtime: Runtime,
        *,
        group: str | None = None,
        batch_size: int = 500,
        backoff: float | None = None,
        capacity: int = 1_000,
        close_timeout: float = 10.0,
    ) -> None:
        self.settings = runtime.settings
        self.bus = runtime.bus
        self.store = runtime.store
        self.batch_size = batch_size
        self.close_timeout = close_timeout
        self.published = 0
        self._failed: list[tuple[Message, str]] = []  # each list kept until its part is done
        self._records: list[tuple[str, Delivery]] = []
        self._ended: list[Outcome] = []
        self._committed: dict[TopicPartition, int] = {}
        self.dead = DeadLetters(runtime.bus, component=self.name)
        notifier = runtime.settings.notifier
        self.announcements = Announcements(
            runtime.store, instance=uuid.uuid4().hex, remember=notifier.remember_seconds
        )
        self.webhooks = Webhooks(
            notifier,
            backoff=notifier.backoff_seconds if backoff is None else backoff,
            capacity=capacity,
            on_delivered=lambda hook, notice: self.announcements.ended([(hook, notice)]),
        )
        self.subscriptions: Subscriptions = Subscriptions(runtime.store)
        self.progress = Progress()
        self.revision: int | None = None
        self.consumer = runtime.bus.subscribe(
            [topics.ALERTS, topics.MODELS], group=group or notifier.group
        )
        self.lag = LagSampler(self.name, self.consumer)
        self._streams = {stream.name for stream in runtime.settings.streams}

    @property
    def delivered(self) -> int:
        """Webhook deliveries that succeeded."""
        return self.webhooks.delivered

    @property
    def failed(self) -> int:
        """Webhook deliveries that failed for good (each is on the dead-letter topic)."""
        return self.webhooks.failed

    def step(self, timeout: float = 0.0) -> int:
        self._settle()
        deadline = time.monotonic() + timeout
        if self.webhooks.room() == 0 and not self.webhooks.wait_for_room(timeout):
            return 0  # a webhook is that far behind: read more only once it catches up
        wait = max(0.0, deadline - time.monotonic())
        messages = self.consumer.consume(min(self.batch_size, self.webhooks.room()), timeout=wait)
        self.lag.sample()
        if not messages:
            self.reload()
        else:
            with rewound_on_failure(self.consumer, messages):  # nothing announced: read again
                self.reload()
                self._announce(messages)
        self._commit()
        return len(messages)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds for queued deliveries, then settle how they ended
        (dead letters, records) and commit; False when deliveries were still under way."""
        idle = self.webhooks.wait_idle(timeout)
        self._settle()
        self._commit()
        return idle

    def reload(self) -> bool:
        """Take up the subscriptions as they are now if they changed; True when they had."""
        if self.subscriptions.revision() == self.revision:
            return False
        self.revision, subscribed = self.subscriptions.snapshot()
        checked = not self.settings.service.allow_private_webhooks
        self.webhooks.subscribe(
            [Webhook.from_subscription(s, secret, checked=checked) for s, secret in subscribed]
        )
        return True

    def working(self) -> bool:
        """Once its group gave it partitions."""
        return bool(self.consumer.assignment())

    def close(self) -> None:
        """Deliver what is queued (for up to ``close_timeout``), commit what has ended, and
        leave the group; deliveries left unmade are made by whoever reads their events next."""
        try:
            self.webhooks.close(self.close_timeout)
            self._settle()
            self._commit()
        finally:
            self.lag.close()
            self.consumer.close()

    def _settle(self) -> None:
        """Dead-letter the deliveries that failed, record how each to a subscription ended,
        then mark them ended (for the records and the commit), in that order: each list is
        kept until its part is done, so a failure is never just forgotten."""
        for outcome in self.webhooks.take_outcomes():
            if outcome.left == "stopped":
                continue  # whoever reads the event next makes the delivery
            if outcome.left is None and outcome.error is not None:
                self._failed.append((outcome.notice.message, outcome.reason))
            if outcome.left is None and outcome.webhook.subscription is not None:
                self._records.append((outcome.webhook.subscription, outcome.record()))
            self._ended.append(outcome)
        if self._failed:
            self.dead.send(self._failed)
            self._failed = []
        if self._records:
            self.subscriptions.record(self._records)
            self._records = []
        if self._ended:
            self.announcements.ended([(o.webhook, o.notice) for o in self._ended])
            for outcome in self._ended:
                self.progress.ended(outcome.notice.message)
            self._ended = []

    def _announce(self, messages: list[Message]) -> None:
        envelopes, rejected = decode_batch(messages, max_bytes=self.settings.max_event_bytes)
        self._count(envelopes, len(messages))
        notices: list[Notice] = []
        for envelope in envelopes:
            if isinstance(envelope.payload, Alert | ModelEvent):
                notices.append(Notice.of(envelope))
            else:
                rejected.append((envelope.message, _misplaced(envelope)))
        self.dead.send(rejected)
        told, deliveries = self.announcements.announce(notices, self.webhooks.targets, _on_redis)
        self.published += told
        self.progress.read(messages)
        for hook, notice in deliveries:
            self.progress.wait(notice.message)
            self.webhooks.submit(notice, [hook])

    def _commit(self) -> None:
        # Only partitions this notifier still reads, and only what moved: a partition another
        # notifier took over keeps its commits.
        assigned = self.consumer.assignment()
        moved = {
            p: o
            for p, o in self.progress.committable().items()
            if p in assigned and self._committed.get(p) != o
        }
        if not moved:
            return
        try:
            self.consumer.commit(moved)
        except BusError as error:
            # Everything read is announced or queued: the next commit covers these offsets.
            log.warning("notifier: commit failed, retried with the next: %s", error)
            return
        self._committed.update(moved)

    def _count(self, envelopes: list[Envelope], messages: int) -> None:
        # By the stream an event is about when that is a configured one, so the label stays
        # bounded whatever another writer puts in an alert; "" for the rest.
        streams = Counter(getattr(e.payload, "stream", "") for e in envelopes)
        streams[""] += messages - len(envelopes)
        for stream, count in streams.items():
            EVENTS_CONSUMED.labels(self.name, stream if stream in self._streams else "").inc(count)
        BATCH_SIZE.labels(self.name).observe(messages)


def _on_redis(pipe: Pipeline[bytes], notice: Notice) -> None:
    """Announce ``notice`` on its pub/sub channels and in its capped log."""
    family = notice.family
    pipe.publish(keys.channel(family), notice.body)
    pipe.publish(keys.channel(family, notice.stream), notice.body)
    entry = {"id": notice.event_id, "kind": notice.kind, "stream": notice.stream}
    pipe.xadd(keys.log(family), entry | {"event": notice.body}, maxlen=LOG_LENGTH, approximate=True)


def _misplaced(envelope: Envelope) -> str:
    return (
        f"a {envelope.type} event does not belong on {envelope.message.topic}: the notifier "
        f"announces only {Alert.type} and {ModelEvent.type}; publish it to its own topic"
    )
