"""Kafka transactions, whichever client produces them: records and the consumed offsets they
answer, committed together (a consume-transform-produce step, the predictor's).

The offsets go with the consumer's group metadata (KIP-447), so a member that lost its
partitions in a rebalance cannot commit them; readers of committed records only never see an
aborted transaction's records, so each input is answered exactly once in what they read, across
crashes. The transactional id is the component's name and a random suffix: two copies of a
component never share one, and a killed process's open transaction is aborted by the broker
after the transaction timeout. The clients' own steps are in :mod:`meander.bus.kafka_transactions`
and :mod:`meander.bus.confluent_transactions`.
"""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Generic, TypeVar

from meander.bus.base import Consumer, Record, TopicPartition, Transactional
from meander.bus.member import GroupMember
from meander.exceptions import BusError

__all__ = ["TRANSACTION_RETRY_BACKOFF_MS", "Transactions"]

log = logging.getLogger(__name__)

TRANSACTION_RETRY_BACKOFF_MS = 10
"""How long a transactional producer waits before it sends a request again. A transaction's
first request is refused while the broker still writes the last one's markers
(CONCURRENT_TRANSACTIONS, a few milliseconds), and so is one sent before its coordinator was
found: at the clients' default, 100 ms, each such wait was longer than a 500-event
transaction (kafka-python sleeps it, IO thread and all: 4 times in 19 transactions of one
traced predictor). librdkafka doubles the wait on each retry up to retry.backoff.max.ms."""

P = TypeVar("P")  # the client's producer


class Transactions(Transactional, Generic[P]):
    """One transactional producer; after a failure it is replaced by a new one under the same
    transactional id, whose start fences the old one and settles its last transaction."""

    member: ClassVar[type[GroupMember]]
    """The consumers (of this client) whose group's offsets a transaction commits."""

    def __init__(
        self,
        name: str,
        connect: Callable[[str], P],
        check: Callable[[Sequence[Record]], None],
        bootstrap: str,
        timeout: float,
    ) -> None:
        self.transactional_id = f"{name}-{uuid.uuid4().hex[:12]}"
        self._connect = connect
        self._check = check
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._producer: P | None = None

    def publish(
        self, records: Sequence[Record], consumer: Consumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        if not isinstance(consumer, self.member) or consumer.group is None:
            raise BusError("a transaction commits a group's offsets: use subscribe()'s consumer")
        self._check(records)  # a bad batch is refused before the transaction begins
        try:
            self._transact(self._ready(), records, consumer, offsets)
        except BusError as error:
            self._discard()
            # The new producer's start settled the transaction (aborted, or committed when its
            # commit was already on its way): the group's offsets say which.
            consumer.rewind_to_committed(offsets.keys())
            raise type(error)(
                f"a transaction of {len(records)} record(s) failed ({error}); it is settled and "
                "its input is read again from the group's committed offsets"
            ) from error

    @abstractmethod
    def _transact(
        self,
        producer: P,
        records: Sequence[Record],
        consumer: GroupMember,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        """Publish ``records`` and commit ``offsets`` in one transaction of ``producer``; a
        failure raises BusError (BusUnavailable when the broker did not answer in time)."""

    @abstractmethod
    def _start(self, producer: P) -> None:
        """Register the transactional id (fencing an older producer with it); raises BusError."""

    @abstractmethod
    def _close(self, producer: P, timeout: float) -> None:
        """Release ``producer``, waiting at most ``timeout`` seconds for what it holds."""

    def prepare(self) -> None:
        self._ready()

    def close(self) -> None:
        if self._producer is not None:
            self._close(self._producer, self._timeout)
            self._producer = None

    def _ready(self) -> P:
        if self._producer is None:
            producer = self._connect(self.transactional_id)
            try:
                self._start(producer)
            except BaseException:
                self._close(producer, 0)
                raise
            self._producer = producer
        return self._producer

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                self._close(producer, 0)
            except Exception as error:  # closing a broken producer must not hide why it broke
                log.debug("closing a failed transactional producer: %s", error)
        try:
            self._ready()  # fences the old producer and settles its transaction now
        except BusError as error:
            log.warning("transactional producer %s not ready: %s", self.transactional_id, error)
