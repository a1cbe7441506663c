"""Where a restarted producer takes up: it never publishes again what its topics already hold.

A producer's output is a function of its settings: the same source, seed and label settings
give the same events and labels, in the same order on each topic, however they are batched or
paced. So each record carries its place in that order (the header ``meander-producer``: a digest
of the settings and the record's number on its topic). A producer started again reads, for each
partition of its topics, the number of the last record of the same settings stored there,
replays its source from the start and drops every record its partition already holds; the
labels still pending are rebuilt by the replay. A partition holds a producer's records in their
order (the idempotent producer keeps it), so a batch stored in part before a kill is completed,
not repeated. Records of other writers (the service, another producer) are passed by.

>>> from meander.bus import MemoryBroker, MemoryBus, Record
>>> bus = MemoryBus(MemoryBroker())
>>> bus.create_topics({"t": 2})
>>> records = [Record("t", b"v", key=f"e{i}".encode()) for i in range(6)]
>>> _ = bus.publish(Stamps(bus, "run", ["t"]).new(records[:4]))  # a first run stops at 4
>>> [r.key for r in Stamps(bus, "run", ["t"]).new(records)]  # the next one sends the rest
[b'e4', b'e5']
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import orjson

from meander.bus import Bus, Consumer, Record, TopicPartition
from meander.bus.partitioner import partitions_of
from meander.config import ProducerSettings
from meander.events.headers import PRODUCER_HEADER

__all__ = ["HEADER", "Stamps", "run_of"]

HEADER = PRODUCER_HEADER
# Settings that change how fast records go out, not which records nor their order.
PACING = {"rate", "batch", "progress"}


def run_of(settings: ProducerSettings, stream: str) -> str:
    """A digest of what decides a producer's records: its settings but pacing, and its stream."""
    kept = settings.model_dump(mode="json", exclude=PACING)
    digest = hashlib.sha256(orjson.dumps([stream, kept], option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:16]


class Stamps:
    """Numbers the records of run ``run`` on each of ``topics`` and, after a restart, drops
    those already stored."""

    def __init__(self, bus: Bus, run: str, topics: Sequence[str]) -> None:
        self.run = run
        self.sent = dict.fromkeys(topics, 0)
        self.counts = {topic: bus.partitions(topic) for topic in topics}
        # The number of the last record of this run in each partition, while some are ahead.
        self.stored = {topic: last_stored(bus, topic, run) for topic in topics}
        self.skipped = 0

    @property
    def resuming(self) -> bool:
        """Whether records the topics hold are still ahead in the replay."""
        return any(self.stored.values())

    def new(self, records: Sequence[Record]) -> list[Record]:
        """``records`` (all for one topic, in the run's order), stamped, without those stored."""
        if not records:
            return []
        topic = records[0].topic
        first = self.sent[topic]
        self.sent[topic] += len(records)
        numbers = range(first, first + len(records))
        kept: Sequence[int] = range(len(records))
        stored = self.stored[topic]
        if stored:
            keys = [record.key or b"" for record in records]
            placed = partitions_of(keys, self.counts[topic])
            kept = [
                i
                for i, partition in enumerate(placed)
                if records[i].key is None or numbers[i] > stored.get(partition, -1)
            ]
            self.skipped += len(records) - len(kept)
            if numbers[-1] >= max(stored.values()):
                stored.clear()  # every partition is passed: nothing more to drop
        return [_stamped(records[i], f"{self.run}:{numbers[i]}") for i in kept]


def last_stored(bus: Bus, topic: str, run: str) -> dict[int, int]:
    """For each partition of ``topic`` holding records of ``run``, the last one's number; read
    from the end back, each look four times as far as the last."""
    found: dict[int, int] = {}
    for partition in range(bus.partitions(topic)):
        part = TopicPartition(topic, partition)
        with bus.assign([part]) as reader:
            end = reader.end_offsets([part])[part]
            back = 256
            while end > 0:
                start = max(0, end - back)
                numbers = _numbers(reader, part, start, end, run)
                if numbers:
                    found[partition] = max(numbers)
                    break
                if start == 0:
                    break
                back *= 4
    return found


def _numbers(reader: Consumer, part: TopicPartition, start: int, end: int, run: str) -> list[int]:
    prefix = f"{run}:".encode()
    numbers: list[int] = []
    reader.seek(part, start)
    deadline = time.monotonic() + 60
    while reader.position(part) < end:
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read {part.topic}[{part.partition}] to offset {end}")
        for message in reader.consume(5_000, 0.5):
            stamp = dict(message.headers).get(HEADER)
            if stamp is not None and stamp.startswith(prefix):
                numbers.append(int(stamp[len(prefix) :]))
    return numbers


def _stamped(record: Record, stamp: str) -> Record:
    return Record(
        record.topic,
        record.value,
        record.key,
        (*record.headers, (HEADER, stamp.encode())),
        record.partition,
        record.timestamp_ms,
    )
