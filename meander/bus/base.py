"""The bus contract: what every backend (Kafka, embedded) promises.

Topics have partitions; records with the same key land on the same partition; each partition is
an ordered log with offsets from 0. Consumers either join a group, which spreads the partitions
over its members and remembers committed offsets, or read partitions they assign themselves.
A committed offset is the next offset to read, as in Kafka.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from meander.bus.records import (
    UNREADABLE,
    Headers,
    Message,
    ReadHeaders,
    Record,
    TopicPartition,
    next_offsets,
    unreadable,
)
from meander.clock import DEFAULT_MAX_AHEAD_SECONDS, TimeWindow
from meander.closing import Closing
from meander.exceptions import BusError, InvalidTimestamp, MessageTooLarge

__all__ = [
    "UNREADABLE",
    "Bus",
    "Consumer",
    "Delivered",
    "Headers",
    "Message",
    "ReadHeaders",
    "Record",
    "Sending",
    "Sent",
    "TopicPartition",
    "Transactional",
    "next_offsets",
    "unreadable",
]


class Delivered(NamedTuple):
    """Where the bus stored a published record."""

    topic: str
    partition: int
    offset: int


class Sending(ABC):
    """Records handed to the bus, whose acknowledgement may still be on its way.

    A component that must not wait for every acknowledgement (the predictor) sends a batch,
    goes on with the next one, and asks :meth:`done` later; :meth:`wait` blocks, and raises
    the bus's error (``BusError`` or a subclass) when a record could not be stored.
    ``BusUnavailable`` (not acknowledged in time) is not a failure: the records may still be
    stored, so wait on the same sending again rather than send them again
    (:class:`~meander.bus.outbox.Outbox` does).
    """

    @abstractmethod
    def done(self) -> bool:
        """Whether every record is acknowledged or failed; never blocks."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[Delivered]:
        """Where the bus stored each record, in order, once all are; raises when one failed."""

    def refused(self) -> list[int] | None:
        """Once :meth:`wait` raised a BusError other than BusUnavailable, the positions of the
        records the bus refused (the others are stored); None when it cannot tell which."""
        return None


class Sent(Sending):
    """A batch the bus stored before it returned, as the embedded bus does.

    >>> sent = Sent([Delivered("t", 0, 7)])
    >>> sent.done(), sent.wait()
    (True, [Delivered(topic='t', partition=0, offset=7)])
    """

    def __init__(self, delivered: list[Delivered]) -> None:
        self.delivered = delivered

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> list[Delivered]:
        return self.delivered


class Transactional(Closing):
    """Publishes records together with the input offsets they answer (a consume-transform-
    produce step): a reader of committed records only (every meander reader, with
    ``processing_guarantee = "exactly_once"``) sees the records, and the consumer's group the
    offsets, both or neither."""

    @abstractmethod
    def publish(
        self, records: Sequence[Record], consumer: Consumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Publish ``records`` and commit ``offsets`` for ``consumer``'s group at once. On
        failure neither is kept, ``consumer`` is moved back to its group's committed offsets
        (the input is read again) and BusError is raised."""

    def prepare(self) -> None:  # nothing to prepare unless a bus says so
        """Get ready to publish, so that a first batch waits for nothing but its own
        transaction (Kafka: the transactional id registered, which fences an older producer
        with it). Raises BusError when the bus cannot be reached; :meth:`publish` prepares
        too."""


class Consumer(Closing):
    """Reads batches from a group's share of partitions, or from partitions it assigned itself."""

    @abstractmethod
    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_records`` messages, waiting at most ``timeout`` seconds for the first."""

    @abstractmethod
    def commit(
        self, offsets: Mapping[TopicPartition, int] | None = None, *, asynchronous: bool = False
    ) -> None:
        """Commit ``offsets`` (next offset to read), or the positions of everything consumed.

        ``asynchronous`` returns before the bus has the commit; a failed one is logged, and
        the next commit (of later offsets) covers it."""

    @abstractmethod
    def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset for ``partition``, None when there is none."""

    @abstractmethod
    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` on; the partition must be assigned."""

    @abstractmethod
    def position(self, partition: TopicPartition) -> int:
        """The offset of the next message ``consume`` returns from ``partition``."""

    @abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now (a group may change them on rebalance)."""

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has as this consumer's client last learned it, without
        a round trip; None when the client keeps no such count (then ask the bus)."""
        return None

    @abstractmethod
    def extend(self, partitions: Sequence[TopicPartition]) -> None:
        """Read ``partitions`` too, from their beginning: a consumer outside a group takes
        partitions added to its topics (:mod:`meander.bus.whole_topic`)."""

    @abstractmethod
    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        """Per partition, the first offset whose timestamp (ms) is at or after the given one."""

    @abstractmethod
    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Per partition, the offset the next published message will get."""

    def known_end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """:meth:`end_offsets` as this consumer last learned them without asking (a Kafka
        fetch answer carries its partition's end, :meth:`seen_end`), asking only for those it
        has not learned: for a metric, which must not hold up a step with a round trip."""
        known: dict[TopicPartition, int] = {}
        unknown: list[TopicPartition] = []
        for partition in partitions:
            seen = self.seen_end(partition)
            if seen is None:
                unknown.append(partition)
            else:
                known[partition] = seen
        if unknown:
            known.update(self.end_offsets(unknown))
        return known

    def rewind(self, messages: Sequence[Message]) -> None:
        """Read ``messages`` again: seek each partition back to the first of them it holds.

        What a step does when handling a batch failed, so that no later commit passes over it.
        A partition no longer assigned (a rebalance) is read again by its new owner.
        """
        first: dict[TopicPartition, int] = {}
        for message in messages:
            first.setdefault(message.topic_partition, message.offset)
        for partition, offset in first.items():
            try:
                self.seek(partition, offset)
            except BusError:
                continue

    def seen_end(self, partition: TopicPartition) -> int | None:
        """The end offset of ``partition`` as the last fetch saw it, without asking the broker,
        or None when unknown. The end may be further by now, never before it: a position short
        of it is sure to have more to read, and only one at it needs :meth:`end_offsets`."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Leave the group (if any) and release resources; uncommitted progress is not kept."""


class Bus(Closing):
    """Publishes records and hands out consumers."""

    max_message_bytes: int = 1_000_000
    topic_limits: Mapping[str, int] = {}
    """Topics whose records may be larger than ``max_message_bytes`` (models, checkpoints)."""
    time_window: TimeWindow = TimeWindow(DEFAULT_MAX_AHEAD_SECONDS)

    @abstractmethod
    def create_topics(
        self, topics: Mapping[str, int], configs: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        """Create each topic with its partition count, and the topic settings ``configs`` gives
        it (cleanup policy, size limit); existing topics are left as they are."""

    @abstractmethod
    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has; BusError when it does not exist."""

    @abstractmethod
    def topic_settings(self, topic: str) -> dict[str, str]:
        """The settings of ``topic`` by name (``cleanup.policy``, ``max.message.bytes``, ...):
        the broker's, or for an embedded bus those it was created with."""

    @abstractmethod
    def publish(self, records: Sequence[Record], timeout: float | None = None) -> list[Delivered]:
        """Publish and wait until the bus has stored every record; returns where, in order."""

    def send(self, records: Sequence[Record]) -> Sending:
        """Hand ``records`` to the bus without waiting for their acknowledgement.

        A bad batch (too large, unknown topic) is refused here, as by :meth:`publish`. A bus
        that stores records as it is handed them needs nothing more than this default.
        """
        return Sent(self.publish(records))

    def problem(self) -> str | None:
        """Why this bus cannot publish now, or None; what a readiness check reports."""
        return None

    @abstractmethod
    def subscribe(
        self, topics: Sequence[str], group: str, *, from_beginning: bool = True
    ) -> Consumer:
        """A consumer that joins ``group``; with no committed offset it starts at the beginning
        of each partition, or at its end when ``from_beginning`` is False."""

    def transactional(self, name: str) -> Transactional:
        """A producer of transactions for one component (``name`` says which, and its stream)."""
        raise BusError(f"{type(self).__name__} has no transactions")

    @abstractmethod
    def assign(self, partitions: Sequence[TopicPartition]) -> Consumer:
        """A consumer outside any group that reads ``partitions`` from their beginning."""

    @abstractmethod
    def close(self) -> None:
        """Flush what is pending and release connections."""

    def check_records(self, records: Sequence[Record]) -> None:
        """Refuse the whole batch before anything is sent when one record is too large, or its
        timestamp is one the broker would refuse (:mod:`meander.clock`)."""
        self.check_sizes(records)
        self.check_times(records)

    def check_sizes(self, records: Sequence[Record]) -> None:
        """Refuse the whole batch before anything is sent when one record is too large."""
        for index, record in enumerate(records):
            limit = self.topic_limits.get(record.topic, self.max_message_bytes)
            if record.size() > limit:
                setting = (
                    "state_max_bytes" if record.topic in self.topic_limits else "max_event_bytes"
                )
                raise MessageTooLarge(
                    f"record {index} for {record.topic} is {record.size()} bytes, over the "
                    f"{limit}-byte limit; split it or raise {setting}"
                )

    def check_times(self, records: Sequence[Record]) -> None:
        """Refuse the whole batch before anything is sent when one record's timestamp is one
        the broker would refuse: an idempotent producer it refuses fails for good."""
        horizon = self.time_window.horizon()
        for index, record in enumerate(records):
            if not 0 <= record.timestamp_ms <= horizon.ms:
                problem = self.time_window.timestamp_problem(record.timestamp_ms, horizon)
                raise InvalidTimestamp(f"record {index} for {record.topic}: {problem}")


def unknown_topic(topic: str) -> BusError:
    return BusError(f"topic {topic!r} does not exist; create it first (meander topics create)")


def not_assigned(partition: TopicPartition) -> BusError:
    return BusError(f"{partition.topic}[{partition.partition}] is not assigned to this consumer")
