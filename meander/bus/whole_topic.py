"""Every partition of a topic, read by one consumer outside any group, as the topic grows.

``kafka-topics --alter --partitions`` adds partitions to a live topic. A group of consumers
rebalances onto them once its clients' metadata shows them (:data:`METADATA_MAX_AGE_MS`); a
reader that assigned itself every partition (a learner's) counts them again every
:data:`RECOUNT_SECONDS` through :meth:`WholeTopic.grow` and reads the new ones from their
beginning.

>>> from meander.bus import MemoryBroker, MemoryBus
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"t": 2})
>>> whole = WholeTopic(bus, "t", every=0.0)
>>> [p.partition for p in whole.partitions], whole.grow()
([0, 1], [])
"""

from __future__ import annotations

import time

from meander.bus.base import Bus, Consumer, TopicPartition

__all__ = ["METADATA_MAX_AGE_MS", "RECOUNT_SECONDS", "WholeTopic"]

METADATA_MAX_AGE_MS = 2_000
"""How old a Kafka client's view of the cluster may grow before it asks again, which is how soon
a group reads partitions added to its topics and a producer writes to them. The clients'
default, five minutes, left a predictor that long without them; a metadata request every two
seconds costs the broker next to nothing."""
RECOUNT_SECONDS = METADATA_MAX_AGE_MS / 1000


class WholeTopic:
    """``consumer`` reads every partition of ``topic`` (``partitions``), from their beginning;
    :meth:`grow` takes in those added since, counting them at most every ``every`` seconds."""

    def __init__(self, bus: Bus, topic: str, *, every: float = RECOUNT_SECONDS) -> None:
        self.bus, self.topic, self.every = bus, topic, every
        self.partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
        self.consumer: Consumer = bus.assign(self.partitions)
        self._counted = time.monotonic()

    def grow(self) -> list[TopicPartition]:
        """The partitions added since the last count, now read too (none when that count is too
        recent to ask again)."""
        if time.monotonic() - self._counted < self.every:
            return []
        self._counted = time.monotonic()
        # The consumer's own count where its client keeps one (kafka-python's metadata): asking
        # the broker took 9-13 ms a call on a loaded machine, and a learner recounts 3 topics.
        count = self.consumer.partition_count(self.topic) or self.bus.partitions(self.topic)
        added = [TopicPartition(self.topic, p) for p in range(len(self.partitions), count)]
        if added:
            self.consumer.extend(added)
            self.partitions.extend(added)
        return added
