"""The Kafka consumer behind the bus contract: group or self-assigned reads, manual commits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import IllegalStateError, KafkaError
from kafka.structs import OffsetAndMetadata

from meander.bus.base import Consumer, Message, TopicPartition
from meander.exceptions import BusError

__all__ = ["KafkaGroupConsumer"]

log = logging.getLogger(__name__)

JOIN_WAIT = 10.0  # seconds; the broker delays a new group's first join by 3 s


class KafkaGroupConsumer(Consumer):
    """A kafka-python consumer behind the bus contract."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        group: str | None,
        prober: Callable[[], KafkaConsumer] | None = None,
    ) -> None:
        self._consumer = consumer
        self.group = group
        self._prober = prober
        self._probe: KafkaConsumer | None = None

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        coordinator = self._consumer._coordinator
        if self.group is not None and coordinator.need_rejoin():
            # kafka-python 3.0.12 can leave a member for good in a rebalancing state, every
            # commit refused, when a poll gives up on a join before it completes and the next
            # poll no longer sees the need to rejoin (seen in every `meander run predictor`
            # stepped without waiting): so a join is always waited for to its end.
            coordinator.ensure_active_group(timeout_ms=int(JOIN_WAIT * 1000))
        polled = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        if len(polled) == 1:
            (messages,) = polled.values()
            return messages  # type: ignore[no-any-return]  # read as Messages (kafka_records)
        return [message for messages in polled.values() for message in messages]

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
            raise _not_assigned(partition) from error

    def position(self, partition: TopicPartition) -> int:
        try:
            offset: int = self._consumer.position(KafkaTopicPartition(*partition))
        except (IllegalStateError, AssertionError, ValueError) as error:
            raise _not_assigned(partition) from error
        return offset

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(p.topic, p.partition) for p in self._consumer.assignment()}

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


def _not_assigned(partition: TopicPartition) -> BusError:
    return BusError(f"{partition.topic}[{partition.partition}] is not assigned to this consumer")
