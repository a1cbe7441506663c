"""Kafka transactions on confluent-kafka: records and the consumed offsets they answer, committed
together, with the same guarantees as :mod:`meander.bus.kafka_transactions`.

The offsets go with the consumer's group metadata (KIP-447), so a member that lost its
partitions in a rebalance cannot commit them; readers with ``isolation.level=read_committed``
never see an aborted transaction's records. The transactional id is the component's name and
a random suffix; after a failure a new producer under the same id fences the old one and
settles its last transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import KafkaException, Producer
from confluent_kafka import TopicPartition as LibrdkafkaPartition

from meander.bus.base import Consumer, Record, TopicPartition, Transactional
from meander.bus.confluent_consumer import ConfluentConsumer
from meander.bus.confluent_sending import ConfluentSending
from meander.exceptions import BusError, BusUnavailable

__all__ = ["ConfluentTransactional"]

log = logging.getLogger(__name__)


class ConfluentTransactional(Transactional):
    """One transactional producer, replaced by a new one under the same id after a failure."""

    def __init__(
        self,
        name: str,
        connect: Callable[[str], Producer],
        check: Callable[[Sequence[Record]], None],
        bootstrap: str,
        timeout: float,
    ) -> None:
        self.transactional_id = f"{name}-{uuid.uuid4().hex[:12]}"
        self._connect = connect
        self._check = check
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._producer: Producer | None = None

    def publish(
        self, records: Sequence[Record], consumer: Consumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        if not isinstance(consumer, ConfluentConsumer) or consumer.group is None:
            raise BusError("a transaction commits a group's offsets: use subscribe()'s consumer")
        self._check(records)  # a bad batch is refused before the transaction begins
        try:
            producer = self._ready()
            producer.begin_transaction()
            sending = ConfluentSending(producer, records, self._bootstrap, self._timeout)
            sending.hand_over()
            sending.wait()  # a record refused fails the transaction with its own error
            committed = [LibrdkafkaPartition(p.topic, p.partition, o) for p, o in offsets.items()]
            producer.send_offsets_to_transaction(
                committed, consumer.group_metadata(), self._timeout
            )
            producer.commit_transaction(self._timeout)
        except (KafkaException, BusError) as error:
            self._discard()
            # The new producer's start settled the transaction (aborted, or committed when its
            # commit was already on its way): the group's offsets say which.
            consumer.rewind_to_committed(offsets.keys())
            failure = (
                type(error)
                if isinstance(error, BusError)
                else BusUnavailable
                if error.args[0].retriable()
                else BusError
            )
            raise failure(
                f"a transaction of {len(records)} record(s) failed ({error}); it is settled and "
                "its input is read again from the group's committed offsets"
            ) from error

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._timeout)
            self._producer = None

    def _ready(self) -> Producer:
        if self._producer is None:
            producer = self._connect(self.transactional_id)
            producer.init_transactions(self._timeout)
            self._producer = producer
        return self._producer

    def _discard(self) -> None:
        self._producer = None  # librdkafka frees it when the last reference goes
        try:
            self._ready()  # fences the old producer and settles its transaction now
        except KafkaException as error:
            log.warning("transactional producer %s not ready: %s", self.transactional_id, error)
