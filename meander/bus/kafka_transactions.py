"""Kafka transactions: records and the consumed offsets they answer, committed together.

A consume-transform-produce step (the predictor's) sends its output and its input's offsets in
one transaction of kafka-python's transactional producer; the offsets go with the consumer's
group metadata (KIP-447), so a member that lost its partitions in a rebalance cannot commit
them. Readers with ``isolation_level="read_committed"`` never see an aborted transaction's
records, so each input is answered exactly once in what they read, across crashes.

The transactional id is the component's name and a random suffix: two copies of a component
never share one, and a killed process's open transaction is aborted by the broker after
``transaction_timeout_ms`` (read_committed readers of its partitions wait for it until then).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence

from kafka import KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from meander.bus.base import Consumer, Record, TopicPartition, Transactional
from meander.bus.kafka_batches import append_batch
from meander.bus.kafka_consumer import KafkaGroupConsumer
from meander.bus.kafka_sending import Placed, delivery_errors
from meander.exceptions import BusError

__all__ = ["KafkaTransactional"]

log = logging.getLogger(__name__)


class KafkaTransactional(Transactional):
    """One transactional producer; after a failure it is replaced by a new one under the same
    transactional id, whose start fences the old one and settles its last transaction."""

    def __init__(
        self,
        name: str,
        connect: Callable[..., KafkaProducer],
        check: Callable[[Sequence[Record]], None],
        write: Callable[[KafkaProducer, Sequence[Record]], list[Placed]],
        limit: int,
        bootstrap: str,
        timeout: float,
    ) -> None:
        self.transactional_id = f"{name}-{uuid.uuid4().hex[:12]}"
        self._connect = connect
        self._check = check
        self._write = write
        self._limit = limit
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._producer: KafkaProducer | None = None

    def publish(
        self, records: Sequence[Record], consumer: Consumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        if not isinstance(consumer, KafkaGroupConsumer) or consumer.group is None:
            raise BusError("a transaction commits a group's offsets: use subscribe()'s consumer")
        self._check(records)  # a bad batch is refused before the transaction begins
        try:
            with delivery_errors(self._bootstrap, len(records), self._timeout):
                producer = self._ready()
                batches = self._write(producer, records)
                producer.begin_transaction()
                # Whole record batches, as KafkaBus.send hands them over; each partition joins
                # the transaction before its first batch is appended.
                for topic, partition, positions, encoded in batches:
                    chosen = [records[position] for position in positions]
                    append_batch(producer, topic, partition, encoded, chosen, self._limit)
                producer._sender.wakeup()
                committed = {
                    KafkaTopicPartition(*p): OffsetAndMetadata(o, "", -1)
                    for p, o in offsets.items()
                }
                producer.send_offsets_to_transaction(committed, consumer.group_metadata())
                producer.commit_transaction()
        except BusError as error:
            self._discard()
            # The new producer's start settled the transaction (aborted, or committed when its
            # commit was already on its way): the group's offsets say which.
            consumer.rewind_to_committed(offsets.keys())
            raise type(error)(
                f"a transaction of {len(records)} record(s) failed ({error}); it is settled and "
                "its input is read again from the group's committed offsets"
            ) from error

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=self._timeout)
            self._producer = None

    def _ready(self) -> KafkaProducer:
        if self._producer is None:
            producer = self._connect(transactional_id=self.transactional_id)
            try:
                producer.init_transactions()
            except BaseException:
                producer.close(timeout=0)
                raise
            self._producer = producer
        return self._producer

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as error:  # closing a broken producer must not hide why it broke
                log.debug("closing a failed transactional producer: %s", error)
        try:
            self._ready()  # fences the old producer and settles its transaction now
        except (KafkaError, BusError) as error:
            log.warning("transactional producer %s not ready: %s", self.transactional_id, error)
