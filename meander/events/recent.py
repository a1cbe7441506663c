"""The envelopes of messages decoded lately, kept for the next reader of the same message.

Components in one process that read one log are handed the very same message objects (the
embedded bus stores each record once and gives every consumer that object), and each decoded
every event again: the predictor to score it, the learner to join it to its label, the trainer
to replay it. An envelope read from binary-mode headers depends on the message alone, so the
first reader's serves the others. Entries are found by the message's identity and hold the
message, so an identity is never taken for that of another message; the oldest go first. A
bus that makes a new message per read (Kafka) never finds one, and pays a lookup and an
insertion, a few percent of a decoding.

>>> from meander.bus import Message
>>> recent = Recent(limit=2)
>>> first, second, third = (Message("t", 0, offset, None, b"{}", (), 0) for offset in range(3))
>>> for message in (first, second, third):
...     recent.add(message, f"decoded {message.offset}")
>>> recent.get(first), recent.get(third)
(None, 'decoded 2')
>>> recent.get(Message("t", 0, 2, None, b"{}", (), 0)) is None  # equal, but another message
True
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from meander.bus import Message

__all__ = ["RECENT_LIMIT", "Recent"]

Decoded = TypeVar("Decoded")

RECENT_LIMIT = 4_096
"""Envelopes kept: a few chunks of events, their predictions and labels, read by every
component in turn before they drop out."""


class Recent(Generic[Decoded]):
    """What the latest ``limit`` messages decoded to, by the identity of each message."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self.limit = limit
        self._entries: dict[int, tuple[Message, Decoded]] = {}
        # Oldest first. Dropping a dict's oldest key by iterating it costs a scan over the slots
        # its earlier deletions left (8 us an insertion at 4,096 entries); a queue costs none.
        self._order: deque[int] = deque()

    def get(self, message: Message) -> Decoded | None:
        entry = self._entries.get(id(message))
        if entry is None or entry[0] is not message:
            return None
        return entry[1]

    def add(self, message: Message, decoded: Decoded) -> None:
        if self.limit <= 0:
            return
        key = id(message)
        self._entries[key] = (message, decoded)
        order = self._order
        order.append(key)
        if len(order) > self.limit:
            # An identity queued twice (its message added again, or its number taken by a new
            # message) drops the newer entry early: a miss, never a wrong answer.
            try:
                oldest = order.popleft()
            except IndexError:  # a reader in another thread emptied the queue meanwhile
                return
            self._entries.pop(oldest, None)
