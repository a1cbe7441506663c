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

Offsets are committed once an event is on Redis and in the webhook outboxes, so an event is
announced at least once; a webhook's ``X-Meander-Event-Id`` lets it drop repeats.

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
from collections import Counter
from collections.abc import Sequence

from meander import keys, topics
from meander.bus import Message, TopicPartition, next_offsets
from meander.component import Component
from meander.consumers.notifier.deliveries import Delivery, Webhooks
from meander.consumers.notifier.subscriptions import Subscriptions
from meander.consumers.notifier.webhooks import Notice, Webhook, structured
from meander.deadletter import DeadLetters
from meander.events import Alert, Envelope, ModelEvent, decode_batch
from meander.runtime import Runtime
from meander.telemetry import LagSampler
from meander.telemetry.metrics import BATCH_SIZE, EVENTS_CONSUMED

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
        self._undelivered: list[tuple[Message, str]] = []
        self._unrecorded: list[tuple[str, Delivery]] = []
        self.dead = DeadLetters(runtime.bus, component=self.name)
        notifier = runtime.settings.notifier
        self.webhooks = Webhooks(
            notifier,
            backoff=notifier.backoff_seconds if backoff is None else backoff,
            capacity=capacity,
        )
        self.subscriptions: Subscriptions = Subscriptions(runtime.store)
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
        self._dead_letter_failures()
        self._record_outcomes()
        deadline = time.monotonic() + timeout
        if self.webhooks.room() == 0 and not self.webhooks.wait_for_room(timeout):
            return 0  # a webhook is that far behind: read more only once it catches up
        wait = max(0.0, deadline - time.monotonic())
        messages = self.consumer.consume(min(self.batch_size, self.webhooks.room()), timeout=wait)
        self.lag.sample()
        if not messages:
            self.reload()
            return 0
        try:
            self.reload()
            self._announce(messages)
        except BaseException:
            # Without the rewind the next batch would be committed past these unannounced ones.
            self._rewind(messages)
            raise
        return len(messages)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds for queued deliveries, then dead-letter the failures;
        False when deliveries were still under way."""
        idle = self.webhooks.wait_idle(timeout)
        self._dead_letter_failures()
        self._record_outcomes()
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

    def close(self) -> None:
        """Deliver what is queued (for up to ``close_timeout``), dead-letter what was not, and
        leave the group."""
        try:
            self.webhooks.close(self.close_timeout)
            self._dead_letter_failures()
            self._record_outcomes()
        finally:
            self.lag.close()
            self.consumer.close()

    def _dead_letter_failures(self) -> None:
        # Kept until the bus took them: a failed delivery is never just forgotten.
        self._undelivered.extend(self.webhooks.take_failures())
        if self._undelivered:
            self.dead.send(self._undelivered)
            self._undelivered = []

    def _record_outcomes(self) -> None:
        for outcome in self.webhooks.take_outcomes():
            assert outcome.webhook.subscription is not None  # only subscriptions report
            self._unrecorded.append((outcome.webhook.subscription, outcome.record()))
        if self._unrecorded:  # kept until Redis took them, as failures are until the bus did
            self.subscriptions.record(self._unrecorded)
            self._unrecorded = []

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
        self._publish(notices)
        for notice in notices:
            self.webhooks.submit(notice)
        self.consumer.commit(next_offsets(messages))

    def _count(self, envelopes: list[Envelope], messages: int) -> None:
        # By the stream an event is about when that is a configured one, so the label stays
        # bounded whatever another writer puts in an alert; "" for the rest.
        streams = Counter(getattr(e.payload, "stream", "") for e in envelopes)
        streams[""] += messages - len(envelopes)
        for stream, count in streams.items():
            EVENTS_CONSUMED.labels(self.name, stream if stream in self._streams else "").inc(count)
        BATCH_SIZE.labels(self.name).observe(messages)

    def _publish(self, notices: Sequence[Notice]) -> None:
        if not notices:
            return
        with self.store.pipeline(transaction=False) as pipe:
            for notice in notices:
                family = notice.family
                pipe.publish(keys.channel(family), notice.body)
                pipe.publish(keys.channel(family, notice.stream), notice.body)
                entry = {
                    "id": notice.event_id,
                    "kind": notice.kind,
                    "stream": notice.stream,
                    "event": notice.body,
                }
                pipe.xadd(keys.log(family), entry, maxlen=LOG_LENGTH, approximate=True)
            pipe.execute()
        self.published += len(notices)

    def _rewind(self, messages: list[Message]) -> None:
        first: dict[TopicPartition, int] = {}
        for message in messages:
            first.setdefault(message.topic_partition, message.offset)
        for partition, offset in first.items():
            self.consumer.seek(partition, offset)


def _misplaced(envelope: Envelope) -> str:
    return (
        f"a {envelope.type} event does not belong on {envelope.message.topic}: the notifier "
        f"announces only {Alert.type} and {ModelEvent.type}; publish it to its own topic"
    )
