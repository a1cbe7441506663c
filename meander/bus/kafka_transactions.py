"""Kafka transactions on kafka-python's transactional producer (the steps common to both
clients, and the guarantees, are in :mod:`meander.bus.transactions`).

A transaction's records are written as whole record batches, as
:meth:`~meander.bus.kafka.KafkaBus.send` hands them over; its offsets go with the consumer's
group metadata (KIP-447).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from kafka import KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.structs import OffsetAndMetadata

from meander.bus.base import Record, TopicPartition
from meander.bus.kafka_batches import append_batch
from meander.bus.kafka_consumer import KafkaGroupConsumer
from meander.bus.kafka_sending import Placed, delivery_errors
from meander.bus.member import GroupMember
from meander.bus.transactions import Transactions

__all__ = ["KafkaTransactional"]


class KafkaTransactional(Transactions[KafkaProducer]):
    """kafka-python's transactional producer behind :class:`Transactions`."""

    member = KafkaGroupConsumer

    def __init__(
        self,
        name: str,
        connect: Callable[[str], KafkaProducer],
        check: Callable[[Sequence[Record]], None],
        write: Callable[[KafkaProducer, Sequence[Record]], list[Placed]],
        limit: int,
        bootstrap: str,
        timeout: float,
    ) -> None:
        super().__init__(name, connect, check, bootstrap, timeout)
        self._write = write
        self._limit = limit

    def _transact(
        self,
        producer: KafkaProducer,
        records: Sequence[Record],
        consumer: GroupMember,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        with delivery_errors(self._bootstrap, len(records), self._timeout):
            batches = self._write(producer, records)
            producer.begin_transaction()
            # Whole record batches, as KafkaBus.send hands them over; each partition joins the
            # transaction before its first batch is appended.
            for topic, partition, positions, encoded in batches:
                chosen = [records[position] for position in positions]
                append_batch(producer, topic, partition, encoded, chosen, self._limit)
            producer._sender.wakeup()
            committed = {
                KafkaTopicPartition(*p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()
            }
            producer.send_offsets_to_transaction(committed, consumer.group_metadata())
            producer.commit_transaction()

    def _start(self, producer: KafkaProducer) -> None:
        with delivery_errors(self._bootstrap, 0, self._timeout):
            producer.init_transactions()

    def _close(self, producer: KafkaProducer, timeout: float) -> None:
        producer.close(timeout=timeout)
