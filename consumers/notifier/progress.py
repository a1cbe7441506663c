"""How far the notifier may commit: up to the first event whose deliveries are not all over.

A delivery in a webhook's queue is in memory; committing past its event before it ended would
lose it with the process. So each partition's commit stays at the first message still waited
on, and moves on as deliveries end, in any order.

>>> from meander.bus import Message
>>> read = [Message("alerts", 0, offset, None, b"", (), 0) for offset in (7, 8, 9)]
>>> progress = Progress()
>>> progress.read(read)
>>> progress.wait(read[1], 2)  # two webhooks want the second
>>> progress.committable()
{TopicPartition(topic='alerts', partition=0): 8}
>>> progress.ended(read[1]); progress.ended(read[1])
>>> progress.committable()
{TopicPartition(topic='alerts', partition=0): 10}
"""

from __future__ import annotations

from collections.abc import Sequence

from meander.bus import Message, TopicPartition

__all__ = ["Progress"]


class Progress:
    """Per partition: the end of what was read, and the messages still waited on."""

    def __init__(self) -> None:
        self._read: dict[TopicPartition, int] = {}
        self._waiting: dict[TopicPartition, dict[int, int]] = {}

    def read(self, messages: Sequence[Message]) -> None:
        """``messages`` were handled (announced, their deliveries queued)."""
        for message in messages:
            partition = message.topic_partition
            self._read[partition] = max(self._read.get(partition, 0), message.offset + 1)

    def wait(self, message: Message, deliveries: int = 1) -> None:
        """``deliveries`` more of ``message``'s deliveries are under way."""
        waiting = self._waiting.setdefault(message.topic_partition, {})
        waiting[message.offset] = waiting.get(message.offset, 0) + deliveries

    def ended(self, message: Message) -> None:
        """One of ``message``'s deliveries ended."""
        waiting = self._waiting.get(message.topic_partition, {})
        left = waiting.get(message.offset, 0) - 1
        if left > 0:
            waiting[message.offset] = left
        else:
            waiting.pop(message.offset, None)

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition read, the offset the group may commit now."""
        return {
            partition: min(self._waiting.get(partition) or {end: 0})
            for partition, end in self._read.items()
        }
