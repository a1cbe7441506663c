"""The confluent-kafka consumer behind the bus contract: group or self-assigned reads, manual
commits of what was processed.

librdkafka differs from the Java client (and kafka-python) in two ways the contract hides:

- ``position`` is only known once a message of the partition was returned; before that the
  consumer answers from the group's committed offset or the partition's start or end;
- ``seek`` is refused (``_STATE``) until librdkafka fetches the partition, right after it was
  assigned: a self-assigned partition is then assigned again at the offset instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException
from confluent_kafka import Consumer as LibrdkafkaConsumer
from confluent_kafka import TopicPartition as LibrdkafkaPartition

from meander.bus.base import Message, TopicPartition, not_assigned
from meander.bus.confluent_errors import PASSING, for_good, log_consumer_error, unreadable
from meander.bus.confluent_stall import Stall
from meander.bus.confluent_waits import Waits, close_within
from meander.bus.member import GroupMember
from meander.bus.metrics import CONSUMERS_REPLACED
from meander.bus.skipped import deleted_unread
from meander.exceptions import BusError, BusUnavailable

__all__ = ["ConfluentConsumer"]

log = logging.getLogger(__name__)
_LATEST = -1  # the timestamp that asks ListOffsets for a partition's end
T = TypeVar("T")


class ConfluentConsumer(GroupMember):
    """A confluent-kafka consumer behind the bus contract."""

    def __init__(
        self,
        consumer: LibrdkafkaConsumer,
        group: str | None,
        *,
        from_beginning: bool,
        bootstrap: str,
        timeout: float,
        prober: Callable[[], LibrdkafkaConsumer] | None = None,
        renew: Callable[[], LibrdkafkaConsumer] | None = None,
        stall: Stall | None = None,
    ) -> None:
        self._consumer = consumer
        self._prober = prober
        self._renew = renew  # a new client like this one, for a group member that failed for good
        self._stall = stall  # tells a member that stopped rejoining its group from an idle one
        self._topics: list[str] = []
        self._probe: LibrdkafkaConsumer | None = None
        self.group = group
        self._from_beginning = from_beginning
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._waits = Waits(timeout, f"group {group}")  # synchronous commits, bounded
        self._assigned: set[TopicPartition] = set()
        # The next offset of each partition as this consumer returned or sought it.
        self._positions: dict[TopicPartition, int] = {}

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        # consume(n, timeout) waits for n messages or the timeout: a lone message would wait
        # the whole timeout. poll waits for the first; the rest are what has already arrived.
        first = self._consumer.poll(timeout)
        if first is None:
            self._past_control_records()
            self._unless_stalled()
            return []
        polled: list[Any] = [first]  # without error(), each has its topic, partition, offset
        if max_records > 1:
            polled += self._consumer.consume(max_records - 1, 0)
        messages: list[Message] = []
        firsts: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}  # plain tuples: a NamedTuple per record costs
        for record in polled:
            if record.error() is not None:
                if for_good(record.error()):
                    self._replace(f"failed for good ({record.error().str()})", "failed")
                    return []  # nothing of it was committed: read again after the new one joins
                log_consumer_error(record.error())
                continue
            topic, partition, offset = record.topic(), record.partition(), record.offset()
            try:
                headers = record.headers()
                messages.append(
                    Message(
                        topic,
                        partition,
                        offset,
                        record.key(),
                        record.value(),
                        tuple(headers) if headers else (),
                        record.timestamp()[1],
                    )
                )
            except (UnicodeDecodeError, SystemError) as error:
                messages.append(unreadable(topic, partition, offset, error))
            if (topic, partition) not in last:
                firsts[topic, partition] = offset
            last[topic, partition] = offset
        for (topic, partition), offset in firsts.items():
            self._after_gap(TopicPartition(topic, partition), offset)
        for (topic, partition), offset in last.items():
            self._positions[TopicPartition(topic, partition)] = offset + 1
        if not messages:
            self._unless_stalled()
        return messages

    def _after_gap(self, partition: TopicPartition, offset: int) -> None:
        """Count the records Kafka deleted before they were read, when the first record of a
        batch (``offset``) is past where the partition was to be read from and the log now
        starts past that (librdkafka moved there by itself: :mod:`meander.bus.skipped`). A
        transaction's marker, an aborted transaction, compaction leave gaps above the log start:
        not counted. Where a group's partition starts is its committed offset, asked once."""
        position = self._positions.get(partition)
        if position is None and self.group is not None:
            position = self.committed(partition)
        if position is None or offset <= position:
            return
        try:
            log_start, _ = self._consumer.get_watermark_offsets(_theirs(partition), cached=True)
        except KafkaException:
            return
        deleted_unread(
            partition.topic, partition.partition, self.group, position=position, log_start=log_start
        )

    def _past_control_records(self) -> None:
        """Take librdkafka's positions, once it has nothing more to return.

        A transaction ends with a control record (its commit or abort marker) that no reader
        is given: a partition whose last record is one was never read to its end by the
        positions of the messages returned, and a learner's catch-up on a stream any
        transactional producer wrote to stalled for good. librdkafka moves its own position
        past them; it has none (-1001) after a seek until it fetched again."""
        if not self._positions:
            return
        for found in self._consumer.position([_theirs(p) for p in self._positions]):
            if found.offset >= 0:
                self._positions[TopicPartition(found.topic, found.partition)] = found.offset

    def commit(
        self, offsets: Mapping[TopicPartition, int] | None = None, *, asynchronous: bool = False
    ) -> None:
        if self.group is None:
            raise BusError("a consumer outside a group has nothing to commit to; use subscribe()")
        try:
            # None: the offsets librdkafka stored as it returned each message, of the
            # partitions assigned now (never one a rebalance gave to another member).
            partitions = None if offsets is None else _theirs_at(offsets)
            if asynchronous:
                _commit(self._consumer, partitions, asynchronous=True)
            else:
                self.assignment()  # what it answers while this commit may be left behind
                commit = partial(_commit, self._consumer, partitions, asynchronous=False)
                self._waits.call("commit", commit)
        except KafkaException as error:
            if error.args[0].code() == KafkaError._NO_OFFSET:
                return  # nothing consumed since the last commit
            raise BusError(
                f"group {self.group} could not commit ({error}): a rebalance or an unreachable "
                "broker; what was not committed is read again, so nothing is lost"
            ) from error

    def committed(self, partition: TopicPartition) -> int | None:
        if self.group is None:
            return None
        (found,) = self._asking(
            "the committed offset",
            lambda: self._consumer.committed([_theirs(partition)], timeout=self._timeout),
        )
        return found.offset if found.offset >= 0 else None

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if partition not in self.assignment():
            raise not_assigned(partition)
        try:
            self._consumer.seek(LibrdkafkaPartition(partition.topic, partition.partition, offset))
        except KafkaException as error:
            if self.group is not None:
                raise BusError(f"could not seek {partition}: {error}") from error
            # Not fetched yet: assigning it again at the offset starts the fetch there.
            self._consumer.incremental_unassign([_theirs(partition)])
            self._consumer.incremental_assign(
                [LibrdkafkaPartition(partition.topic, partition.partition, offset)]
            )
        self._positions[partition] = offset

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def _seek_to_start(self, partition: TopicPartition) -> None:
        low, high = self._watermarks(partition, cached=False)
        self.seek(partition, low if self._from_beginning else high)

    def position(self, partition: TopicPartition) -> int:
        known = self._positions.get(partition)  # only assigned partitions are kept here
        if known is not None:
            return known
        if partition not in self.assignment():
            raise not_assigned(partition)
        (found,) = self._consumer.position([_theirs(partition)])
        if found.offset >= 0:
            return int(found.offset)
        # Nothing returned yet: where the fetch starts. Kept, so that a loop asking for it
        # (a read to the ends) makes one round trip, not one per turn.
        start = self.committed(partition)
        if start is None:
            low, high = self._watermarks(partition, cached=False)
            start = low if self._from_beginning else high
        self._positions[partition] = start
        return start

    def assignment(self) -> set[TopicPartition]:
        # librdkafka answers only after a commit under way ends, which a commit left behind
        # (the broker does not answer) does not: the last answer, less what was revoked since.
        if not self._waits.waiting():
            self._assigned = {
                TopicPartition(p.topic, p.partition) for p in self._consumer.assignment()
            }
        return set(self._assigned)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        wanted = [LibrdkafkaPartition(p.topic, p.partition, ts) for p, ts in timestamps.items()]
        found = self._asking(
            "offsets for times",
            lambda: self._consumer.offsets_for_times(wanted, timeout=self._timeout),
        )
        return {
            TopicPartition(p.topic, p.partition): p.offset if p.offset >= 0 else None for p in found
        }

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        # One ListOffsets request per leader for all of them (timestamp -1: the latest offset,
        # the last stable one when reading committed records), where get_watermark_offsets
        # would make a round trip per partition.
        wanted = [LibrdkafkaPartition(p.topic, p.partition, _LATEST) for p in partitions]
        probe = self._probing()
        found = self._asking(
            "end offsets", lambda: probe.offsets_for_times(wanted, timeout=self._timeout)
        )
        ends = {TopicPartition(p.topic, p.partition): int(p.offset) for p in found}
        failed = [p for p, offset in ends.items() if offset < 0]
        if failed:
            raise BusUnavailable(f"Kafka at {self._bootstrap} gave no end offset for {failed}")
        return ends

    def seen_end(self, partition: TopicPartition) -> int | None:
        # The high watermark the last fetch answer carried: no round trip to the broker.
        try:
            _, high = self._consumer.get_watermark_offsets(_theirs(partition), cached=True)
        except KafkaException:
            return None
        return int(high) if high >= 0 else None

    def extend(self, partitions: Sequence[TopicPartition]) -> None:
        if self.group is not None:
            raise BusError("a group's consumer reads what the group assigns it")
        # librdkafka answers 'unknown partition' until its metadata shows them: ask for it now.
        for topic in sorted({p.topic for p in partitions}):
            self._asking(
                f"the partitions of {topic}",
                partial(self._consumer.list_topics, topic, timeout=self._timeout),
            )
        self._consumer.incremental_assign(
            [LibrdkafkaPartition(p.topic, p.partition, OFFSET_BEGINNING) for p in partitions]
        )

    def assign_partitions(self, partitions: Sequence[TopicPartition]) -> None:
        """Read ``partitions`` from their beginning, outside any group."""
        self._consumer.assign(
            [LibrdkafkaPartition(p.topic, p.partition, OFFSET_BEGINNING) for p in partitions]
        )

    def subscribe(self, topics: Sequence[str]) -> None:
        """Join the group for ``topics``; partitions it takes away are forgotten here."""
        self._topics = list(topics)
        self._consumer.subscribe(self._topics, on_revoke=self._revoked, on_lost=self._revoked)

    def _unless_stalled(self) -> None:
        """Replace a group member that stopped rejoining its group (:mod:`.confluent_stall`):
        a notifier on confluent-kafka delivered nothing more, for good, after a broker restart."""
        if self._stall is None or not self._stall.stalled(self._consumer):
            return
        idle = self._stall.idle_seconds()
        self._replace(
            f"stopped rejoining group {self.group}: no partitions for {idle:.0f} s, and the "
            "group, settled, does not list it (librdkafka issue 3437)",
            "stalled",
        )

    def _replace(self, why: str, cause: str) -> None:
        """Put a new client in the place of one that failed for good or stalled (``cause``).

        After a fatal error librdkafka's consumer returns nothing, ever: a static member whose
        session timed out while the broker restarted was told it was fenced (by its own
        rejoining), and a predictor on confluent-kafka stopped for good. The new client joins
        the group under the same instance id, from the committed offsets."""
        if self._renew is None or not self._topics:
            raise BusError(f"the Kafka consumer {why}")
        log.error("the Kafka consumer %s; a new one takes its place", why)
        CONSUMERS_REPLACED.labels(self.group or "", cause).inc()
        failed, self._consumer = self._consumer, self._renew()
        if self._probe is failed:
            self._probe = None
        self._positions.clear()
        if self._stall is not None:
            self._stall.reset()
        close_within(failed, self._timeout, "the replaced Kafka consumer")
        self.subscribe(self._topics)

    def _revoked(self, _consumer: Any, partitions: list[LibrdkafkaPartition]) -> None:
        for partition in partitions:
            self._positions.pop(TopicPartition(partition.topic, partition.partition), None)
            self._assigned.discard(TopicPartition(partition.topic, partition.partition))

    def close(self) -> None:
        if self._probe is not None and self._probe is not self._consumer:
            self._probe.close()
        # Bounded: it waits for a commit under way, which waits for the broker (.confluent_waits).
        close_within(self._consumer, self._timeout, f"the Kafka consumer of group {self.group}")

    def _probing(self) -> LibrdkafkaConsumer:
        """A client that never fetches, for end offsets: on the consumer's own connection the
        request queues behind a fetch the broker holds open for up to ``fetch.wait.max.ms``
        (a learner's tails read to their ends: 30-40 ms a request, 0.6 of 2.4 s in a profile)."""
        if self._probe is None:
            self._probe = self._consumer if self._prober is None else self._prober()
        return self._probe

    def _watermarks(self, partition: TopicPartition, *, cached: bool) -> tuple[int, int]:
        low, high = self._asking(
            f"the offsets of {partition.topic}[{partition.partition}]",
            lambda: self._consumer.get_watermark_offsets(
                _theirs(partition), timeout=self._timeout, cached=cached
            ),
        )
        return int(low), int(high)

    def _asking(self, what: str, ask: Callable[[], T]) -> T:
        """``ask()``, asked again while the broker answers with an error that passes (a
        partition whose leader is not ready yet, just after its topic was created or while
        leadership moves: NOT_LEADER_FOR_PARTITION), for up to the timeout: librdkafka hands
        those back at once, where the Java client and kafka-python wait them out."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return ask()
            except KafkaException as error:
                passes = error.args[0].retriable() or error.args[0].code() in PASSING
                if not (passes and time.monotonic() < deadline):
                    raise self._unavailable(what, error) from error
            time.sleep(0.05)

    def _unavailable(self, what: str, error: KafkaException) -> BusUnavailable:
        return BusUnavailable(
            f"Kafka at {self._bootstrap} did not give {what} within {self._timeout:.0f}s: {error}"
        )


def _commit(
    consumer: LibrdkafkaConsumer,
    partitions: list[LibrdkafkaPartition] | None,
    *,
    asynchronous: bool,
) -> None:
    if partitions is None and asynchronous:
        consumer.commit(asynchronous=True)
    elif partitions is None:
        consumer.commit(asynchronous=False)
    elif asynchronous:
        consumer.commit(offsets=partitions, asynchronous=True)
    else:
        consumer.commit(offsets=partitions, asynchronous=False)


def _theirs(partition: TopicPartition) -> LibrdkafkaPartition:
    return LibrdkafkaPartition(partition.topic, partition.partition)


def _theirs_at(offsets: Mapping[TopicPartition, int]) -> list[LibrdkafkaPartition]:
    return [LibrdkafkaPartition(p.topic, p.partition, o) for p, o in offsets.items()]
