"""The learner's four inputs, positioned where its checkpoint left them.

Labels come from ``S.feedback`` in a deterministic merged order (:class:`~meander.bus.ordered.
OrderedReader`); events and predictions are read up to their end at the time of asking
(:class:`Tail`), so every label whose event was published before it finds its features; and
``meander.models`` brings the lifecycle decisions the learner follows.

>>> from meander.bus import MemoryBroker, MemoryBus, Record
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"t": 1})
>>> _ = bus.publish([Record("t", v) for v in (b"a", b"b", b"c")])
>>> tail = Tail(bus, "t", {})
>>> [m.value for m in tail.read_to_end({TopicPartition("t", 0): 2})], tail.offsets()
([b'a', b'b'], {TopicPartition(topic='t', partition=0): 2})
>>> [m.value for m in tail.read_to_end()]
[b'c']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meander import topics
from meander.bus import Bus, Message, TopicPartition
from meander.bus.ordered import OrderedReader, consume_to
from meander.bus.whole_topic import WholeTopic
from meander.config import StreamConfig
from meander.events import ModelEvent, decode_batch
from meander.runtime import Runtime

__all__ = ["LearnerInputs", "Tail"]


class LearnerInputs:
    """The learner's four inputs, positioned at the checkpoint's offsets."""

    def __init__(self, runtime: Runtime, stream: StreamConfig, offsets: dict[TopicPartition, int]):
        bus = runtime.bus
        name = stream.name
        self.feedback = OrderedReader(bus, topics.feedback(name), offsets)
        self.events = Tail(bus, topics.events(name), offsets)
        self.predictions = Tail(bus, topics.predictions(name), offsets)
        models_start = offsets or {TopicPartition(topics.MODELS, 0): _end(bus, topics.MODELS)}
        self.models = Tail(bus, topics.MODELS, models_start)

    def models_batch(self) -> list[Any]:
        envelopes, _ = decode_batch(self.models.read(500))
        return [e for e in envelopes if isinstance(e.payload, ModelEvent)]

    def caught_up(self) -> tuple[list[Message], list[Message]]:
        """Predictions and events, each read up to its end as of one request for both ends.

        Every prediction published by then answers an event published before it, so the
        events read include every event the predictions read answer."""
        # One request for both topics; the bus asks it on a client that never fetches, so it
        # does not queue behind a fetch the broker holds open for a tail already at its end.
        self.predictions.grow()
        self.events.grow()
        both = [*self.predictions.partitions, *self.events.partitions]
        ends = self.predictions.consumer.end_offsets(both)
        return self.predictions.read_to_end(ends), self.events.read_to_end(ends)

    def offsets(self) -> dict[TopicPartition, int]:
        merged = self.feedback.offsets()
        for tail in (self.events, self.predictions, self.models):
            merged.update(tail.offsets())
        return merged

    def close(self) -> None:
        for reader in (self.feedback, self.events, self.predictions, self.models):
            reader.close()


class Tail:
    """Every partition of a topic, read in whatever order, up to the end seen at call time;
    :meth:`grow` takes in partitions added to the topic."""

    def __init__(self, bus: Bus, topic: str, offsets: dict[TopicPartition, int]) -> None:
        self._whole = WholeTopic(bus, topic)
        self.partitions, self.consumer = self._whole.partitions, self._whole.consumer
        for partition in self.partitions:
            if partition in offsets:
                self.consumer.seek(partition, offsets[partition])
        self._ahead: list[Message] = []  # read past the ends asked for: handed out next time

    def grow(self) -> list[TopicPartition]:
        """Read the partitions added to the topic since the last count, from their beginning."""
        return self._whole.grow()

    def read(self, limit: int) -> list[Message]:
        ahead, self._ahead = self._ahead[:limit], self._ahead[limit:]
        if len(ahead) == limit:
            return ahead
        return ahead + self.consumer.consume(limit - len(ahead), 0.0)

    def read_to_end(self, ends: Mapping[TopicPartition, int] | None = None) -> list[Message]:
        """Everything up to ``ends`` (the partitions' ends now, when None): never less, and
        nothing past them.

        A catch-up that stopped short of the events' ends would hand on the predictions of the
        events it had not read yet and dead-letter the labels of those events as unknown: a
        stalled read raises BusUnavailable instead (:func:`~meander.bus.ordered.consume_to`).
        One that went past the predictions' ends would hand on predictions of events published
        after the events' ends, which the events' read need not reach: the client returns what
        its last fetch brought. Found with no event to join, such a prediction was dropped, and
        its label judged without what was served (seen as 100 of 6,000 labels under load). What
        was read past the ends is kept for the next read."""
        ends = ends or self.consumer.end_offsets(self.partitions)
        wanted = {p: ends[p] for p in self.partitions}
        read = self._ahead + consume_to(self.consumer, wanted)
        within = [m for m in read if m.offset < wanted[m.topic_partition]]
        if len(within) < len(read):
            self._ahead = [m for m in read if m.offset >= wanted[m.topic_partition]]
        else:
            self._ahead = []
        return within

    def offsets(self) -> dict[TopicPartition, int]:
        """The next offset to hand out per partition (what was read ahead is not handed out)."""
        offsets = {p: self.consumer.position(p) for p in self.partitions}
        for message in reversed(self._ahead):
            offsets[message.topic_partition] = message.offset
        return offsets

    def close(self) -> None:
        self.consumer.close()


def _end(bus: Bus, topic: str) -> int:
    partition = TopicPartition(topic, 0)
    consumer = bus.assign([partition])
    try:
        return int(consumer.end_offsets([partition])[partition])
    finally:
        consumer.close()
