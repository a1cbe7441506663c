"""The dead-letter topic: where every rejected message goes, whole, with the reason.

A component never drops what it cannot use: it publishes it here before it commits past it, so
a rejected message is either on ``meander.deadletter`` or will be read again. Each is counted in
``meander_deadletters_total`` under the class of its reason
(:func:`~meander.telemetry.dead_letter_reason`) and logged with its event id, when it has one.

>>> from meander.bus import MemoryBus, MemoryBroker, Message
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"meander.deadletter": 1})
>>> garbage = Message("fraud.events", 0, 7, None, b"not json", (), 0)
>>> dead = DeadLetters(bus, component="predictor")
>>> dead.send([(garbage, "not a CloudEvent")])
>>> dead.count
1
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import redis

from meander import topics
from meander.bus import Bus, Message, Record
from meander.events import DeadLetter, encode
from meander.exceptions import BusError, StoreUnavailable
from meander.telemetry import dead_letter_reason
from meander.telemetry.metrics import DEADLETTERS

__all__ = ["OUTAGES", "DeadLetters"]

log = logging.getLogger(__name__)

LOGGED = 5  # dead letters logged one by one per batch; a burst is summed up after them
# INFO, not WARNING: rejecting a bad message is the dead-letter path working, each is kept whole
# on the topic, and their rate is what alerts (MeanderDeadLetterRate). Where nobody configured
# logging (the demo mixes in malformed messages on purpose) nothing is printed.
_STREAM_TOPICS = (".events", ".predictions", ".feedback")

OUTAGES: tuple[type[Exception], ...] = (BusError, StoreUnavailable, redis.RedisError)
"""Failures of the backends, not of a record: a step that meets one fails, and the record is
read again once they answer. Any other failure while handling a record is that record's: it is
dead-lettered with the reason, so that it never stops the records after it."""


class DeadLetters:
    """Publishes rejected messages for one component and counts them."""

    def __init__(self, bus: Bus, component: str) -> None:
        self.bus = bus
        self.component = component
        self.count = 0

    def send(self, rejected: Sequence[tuple[Message, str]]) -> None:
        """Publish each (message, reason); returns once the bus has stored them all."""
        if not rejected:
            return
        self.bus.publish(self.records(rejected))
        self.counted(rejected)

    def records(self, rejected: Sequence[tuple[Message, str]]) -> list[Record]:
        """The dead letters of ``rejected``, for a caller that publishes them itself (in a
        transaction with the rest of its output), and calls :meth:`counted` once they are."""
        # Keep well under the bus limit: base64 grows the original by a third.
        keep = self.bus.max_message_bytes // 2
        return [
            encode(
                topics.DEADLETTER,
                DeadLetter.of(message, reason, self.component, keep_bytes=keep),
                source=f"/meander/{self.component}",
                subject=message.topic,
            )
            for message, reason in rejected
        ]

    def counted(self, rejected: Sequence[tuple[Message, str]]) -> None:
        """Count and log ``rejected``, now on the dead-letter topic."""
        self.count += len(rejected)
        classes = Counter(dead_letter_reason(reason) for _, reason in rejected)
        for reason_class, count in classes.items():
            DEADLETTERS.labels(self.component, reason_class).inc(count)
        self._log(rejected)

    def _log(self, rejected: Sequence[tuple[Message, str]]) -> None:
        for message, reason in rejected[:LOGGED]:
            log.info(
                "dead-lettered %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                reason,
                extra={
                    "component": self.component,
                    "stream": _stream(message.topic),
                    "event_id": _event_id(message),
                    "reason": dead_letter_reason(reason),
                },
            )
        if len(rejected) > LOGGED:
            log.info(
                "dead-lettered %d more in the same batch; each is on %s with its reason",
                len(rejected) - LOGGED,
                topics.DEADLETTER,
                extra={"component": self.component},
            )


def _stream(topic: str) -> str | None:
    for suffix in _STREAM_TOPICS:
        if topic.endswith(suffix):
            return topic[: -len(suffix)]
    return None


def _event_id(message: Message) -> str | None:
    for name, value in message.headers:
        if name == "ce_id" and value is not None:
            return value.decode("utf-8", "replace")
    return None
