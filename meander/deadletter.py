"""The dead-letter topic: where every rejected message goes, whole, with the reason.

A component never drops what it cannot use: it publishes it here before it commits past it, so
a rejected message is either on ``meander.deadletter`` or will be read again.

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

from collections.abc import Sequence

from meander import topics
from meander.bus import Bus, Message
from meander.events import DeadLetter, encode

__all__ = ["DeadLetters"]


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
        # Keep well under the bus limit: base64 grows the original by a third.
        keep = self.bus.max_message_bytes // 2
        records = [
            encode(
                topics.DEADLETTER,
                DeadLetter.of(message, reason, self.component, keep_bytes=keep),
                source=f"/meander/{self.component}",
                subject=message.topic,
            )
            for message, reason in rejected
        ]
        self.bus.publish(records)
        self.count += len(records)
