"""The Kafka consumer behind the bus contract: group or self-assigned reads, manual commits.

A group member's join is always finished before and right after each poll (see
:func:`finish_join`): kafka-python 3.0.12 strands a join that a poll with a short timeout began,
and a member stepped without waiting then fetches for good while every commit is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import CorruptRecordError, IllegalStateError, KafkaError
from kafka.structs import OffsetAndMetadata

from meander.bus.base import UNREADABLE, Message, TopicPartition, not_assigned
from meander.bus.member import GroupMember
from meander.bus.skipped import deleted_unread
from meander.exceptions import BusError

__all__ = ["KafkaGroupConsumer", "finish_join"]

log = logging.getLogger(__name__)


def _noting_resets(consumer: KafkaConsumer) -> list[tuple[KafkaTopicPartition, int]]:
    """The partitions (and the positions they were at) that ``consumer``'s fetcher will reset
    by ``auto_offset_reset``, as they come: kafka-python's only sign of a position that fell
    out of range (records deleted before they were read) is a log line at INFO. Its fetcher
    asks the subscription for such a reset without a strategy; a seek to the beginning or the
    end names its own."""
    resets: list[tuple[KafkaTopicPartition, int]] = []
    subscription = consumer._subscription
    request = subscription.request_offset_reset

    def noting(partition: KafkaTopicPartition, offset_reset_strategy: Any = None) -> None:
        state = subscription.assignment.get(partition)
        if offset_reset_strategy is None and state is not None and state.position is not None:
            resets.append((partition, state.position.offset))
        request(partition, offset_reset_strategy)

    subscription.request_offset_reset = noting
    return resets


def finish_join(consumer: KafkaConsumer, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for ``consumer``'s group join when one is needed or under
    way; nothing to do (two attribute reads) when the member is stable.

    kafka-python 3.0.12 runs JoinGroup -> SyncGroup as a task that ``poll`` awaits for as long
    as its own timeout, and a later ``poll`` awaits it again only while ``need_rejoin()`` holds.
    So a member stepped with short polls loses its join in two ways:

    - ``need_rejoin()`` is also true when the leader's metadata snapshot changed (the topics'
      partitions were not yet known at the last join, or partitions were added), and the
      leader's assignment, made inside the task, makes it false again: no later poll awaits the
      task, so the member stays "rebalancing" for good (every commit refused, no heartbeats)
      while it fetches with its old partitions;
    - a task that ended while no poll waited for it is thrown away and a new JoinGroup sent
      (another generation): polled with timeout 0, a member never becomes stable.

    ``request_rejoin()`` makes kafka-python await the task in flight, and waiting here from
    its start to its end means it is never found finished unawaited.
    """
    coordinator = consumer._coordinator
    if coordinator._join_task is None and not coordinator.need_rejoin():
        return
    coordinator.request_rejoin()
    coordinator.ensure_active_group(timeout_ms=int(timeout * 1000))


class KafkaGroupConsumer(GroupMember):
    """A kafka-python consumer behind the bus contract."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        group: str | None,
        prober: Callable[[], KafkaConsumer] | None = None,
        *,
        join_timeout: float = 10.0,
    ) -> None:
        self._consumer = consumer
        self.group = group
        self.join_timeout = join_timeout
        self._prober = prober
        self._probe: KafkaConsumer | None = None
        self._resets = _noting_resets(consumer)

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        if self.group is not None:
            finish_join(self._consumer, self.join_timeout)
        try:
            polled = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except CorruptRecordError as error:
            return [self._skip_unreadable(error)]
        if self._resets:
            self._count_deleted()
        if self.group is not None and not polled:
            finish_join(self._consumer, self.join_timeout)  # one this poll began and gave up on
        if len(polled) == 1:
            (messages,) = polled.values()
            return messages  # type: ignore[no-any-return]  # read as Messages (kafka_records)
        return [message for messages in polled.values() for message in messages]

    def _count_deleted(self) -> None:
        """Count the records a reset past the log start skipped (:mod:`meander.bus.skipped`)."""
        try:
            starts = self._probing().beginning_offsets([tp for tp, _ in self._resets])
        except KafkaError as error:
            log.warning("could not count the records a reset skipped (next poll): %s", error)
            return
        resets, self._resets[:] = list(self._resets), []
        for tp, position in resets:
            deleted_unread(
                tp.topic, tp.partition, self.group, position=position, log_start=starts[tp]
            )

    def _skip_unreadable(self, error: CorruptRecordError) -> Message:
        """Move past a record kafka-python cannot parse, and return a message standing for it.

        kafka-python 3.0 raises on a record whose header name is not UTF-8 (other clients read
        it) or whose checksum fails, on every poll, for good: one such record would stop every
        reader of its partition. The records before it were returned by earlier polls; the
        parser that failed is still the fetcher's current one, at the record's offset.
        """
        records = self._consumer._fetcher._next_partition_records
        if records is None:
            raise BusError(f"Kafka returned a record that cannot be read: {error}") from error
        tp = records.topic_partition
        offset = self._consumer.position(tp)
        self._consumer.seek(tp, offset + 1)
        log.warning(
            "%s[%d]@%d cannot be read, moved past it: %s", tp.topic, tp.partition, offset, error
        )
        why = f"the Kafka client cannot read this record: {error}"
        return Message(
            tp.topic, tp.partition, offset, None, None, ((UNREADABLE, why.encode()),), -1
        )

    def commit(
        self, offsets: Mapping[TopicPartition, int] | None = None, *, asynchronous: bool = False
    ) -> None:
        if self.group is None:
            raise BusError("a consumer outside a group has nothing to commit to; use subscribe()")
        wanted = (
            None
            if offsets is None
            else {KafkaTopicPartition(*p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        )
        if asynchronous:
            self._consumer.commit_async(wanted, callback=self._committed)
            return
        try:
            self._consumer.commit(wanted)
        except KafkaError as error:
            raise BusError(
                f"group {self.group} could not commit ({error}): a rebalance or an unreachable "
                "broker; what was not committed is read again, so nothing is lost"
            ) from error

    def _committed(self, offsets: Mapping[Any, Any], response: object) -> None:
        if isinstance(response, Exception):
            # Not fatal: the next commit carries later offsets, and a partition lost in a
            # rebalance is read again from its last commit by its new owner (at least once).
            log.warning("group %s: an asynchronous commit failed: %s", self.group, response)

    def committed(self, partition: TopicPartition) -> int | None:
        if self.group is None:
            return None
        offset: int | None = self._consumer.committed(KafkaTopicPartition(*partition))
        return offset

    def seek(self, partition: TopicPartition, offset: int) -> None:
        try:
            self._consumer.seek(KafkaTopicPartition(*partition), offset)
        except (IllegalStateError, AssertionError, ValueError) as error:
            raise not_assigned(partition) from error

    def group_metadata(self) -> Any:
        return self._consumer.group_metadata()

    def _seek_to_start(self, partition: TopicPartition) -> None:
        if self._consumer.config["auto_offset_reset"] == "earliest":
            self._consumer.seek_to_beginning(KafkaTopicPartition(*partition))
        else:
            self._consumer.seek_to_end(KafkaTopicPartition(*partition))

    def position(self, partition: TopicPartition) -> int:
        try:
            offset: int = self._consumer.position(KafkaTopicPartition(*partition))
        except (IllegalStateError, AssertionError, ValueError) as error:
            raise not_assigned(partition) from error
        return offset

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(p.topic, p.partition) for p in self._consumer.assignment()}

    def partition_count(self, topic: str) -> int | None:
        # From the client's metadata, refreshed every METADATA_MAX_AGE_MS: no round trip.
        return len(self._consumer.partitions_for_topic(topic)) or None

    def extend(self, partitions: Sequence[TopicPartition]) -> None:
        if self.group is not None:
            raise BusError("a group's consumer reads what the group assigns it")
        # kafka-python's assign replaces the assignment and keeps the positions of the partitions
        # in both; the new ones start where auto_offset_reset says (the beginning, for assign).
        old = list(self._consumer.assignment())
        self._consumer.assign(old + [KafkaTopicPartition(*p) for p in partitions])

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        found = self._consumer.offsets_for_times(
            {KafkaTopicPartition(*p): ts for p, ts in timestamps.items()}
        )
        return {
            TopicPartition(p.topic, p.partition): None if hit is None else hit.offset
            for p, hit in found.items()
        }

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        ends = self._probing().end_offsets([KafkaTopicPartition(*p) for p in partitions])
        return {TopicPartition(p.topic, p.partition): o for p, o in ends.items()}

    def _probing(self) -> KafkaConsumer:
        """A client that never fetches, for offset requests: on the consumer's own connection
        they would queue behind a fetch the broker holds open for up to fetch_max_wait_ms
        (seen as 28 % of a learner's step, and as a stall every lag sample)."""
        if self._probe is None:
            self._probe = self._consumer if self._prober is None else self._prober()
        return self._probe

    def seen_end(self, partition: TopicPartition) -> int | None:
        # The high watermark each fetch response carries: no round trip to the broker.
        try:
            end: int | None = self._consumer.highwater(KafkaTopicPartition(*partition))
        except (IllegalStateError, AssertionError):
            return None  # not assigned: nothing was fetched
        return end

    def close(self) -> None:
        if self._probe is not None and self._probe is not self._consumer:
            self._probe.close(autocommit=False)
        self._consumer.close(autocommit=False)
