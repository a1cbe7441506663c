"""A Kafka consumer group's member, whichever client reads for it: what a transaction needs of
the consumer whose offsets it commits (:mod:`meander.bus.transactions`)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

from meander.bus.base import Consumer, TopicPartition

__all__ = ["GroupMember"]


class GroupMember(Consumer):
    """A Kafka consumer, in a group (``group``) or reading partitions it assigned itself
    (``group`` None)."""

    group: str | None

    @abstractmethod
    def group_metadata(self) -> Any:
        """The member's group, generation and id, with which a transaction commits offsets (a
        member that lost its partitions in a rebalance cannot commit them)."""

    @abstractmethod
    def _seek_to_start(self, partition: TopicPartition) -> None:
        """Read ``partition`` from where a group with no committed offset starts it."""

    def rewind_to_committed(self, partitions: Iterable[TopicPartition]) -> None:
        """Read each of ``partitions`` still assigned again from the group's committed offset
        (from where a partition with none starts)."""
        assigned = self.assignment()
        for partition in partitions:
            if partition not in assigned:
                continue  # its new owner reads on from the committed offset
            committed = self.committed(partition)
            if committed is None:
                self._seek_to_start(partition)
            else:
                self.seek(partition, committed)
