"""Kafka transactions on kafka-python's transactional producer (the steps common to both
clients, and the guarantees, are in :mod:`meander.bus.transactions`).

A transaction's records are written as whole record batches, as
:meth:`~meander.bus.kafka.KafkaBus.send` hands them over; its offsets go with the consumer's
group metadata (KIP-447). It commits only once the broker stored every batch of it
(:func:`stored`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from meander.bus.base import Record, TopicPartition
from meander.bus.kafka_batches import append_batch
from meander.bus.kafka_consumer import KafkaGroupConsumer
from meander.bus.kafka_sending import Placed, close_producer, delivery_errors, failure
from meander.bus.member import GroupMember
from meander.bus.transactions import Transactions

__all__ = ["KafkaTransactional", "stored"]


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
            futures = []
            for topic, partition, positions, encoded in batches:
                chosen = [records[position] for position in positions]
                future, _ = append_batch(producer, topic, partition, encoded, chosen, self._limit)
                futures.append(future)
            producer._sender.wakeup()
            committed = {
                KafkaTopicPartition(*p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()
            }
            producer.send_offsets_to_transaction(committed, consumer.group_metadata())
            stored(futures, self._timeout)
            producer.commit_transaction()

    def _start(self, producer: KafkaProducer) -> None:
        with delivery_errors(self._bootstrap, 0, self._timeout):
            producer.init_transactions()

    def _close(self, producer: KafkaProducer, timeout: float) -> None:
        close_producer(producer, timeout)


def stored(futures: Sequence[Any], seconds: float) -> None:
    """Return once the broker stored every batch of ``futures``; raise why one was not.

    A transaction must not commit without them, and kafka-python (3.0) can let it: a batch it
    gives up on for a retriable error (its delivery timeout) fails without making the
    transaction abortable, and a batch refused for an old producer epoch (the broker aborted
    the transaction on its timeout, as it does when a starved process commits late) fails
    while the producer takes a new epoch and goes on. Its commit would then commit the
    consumed offsets without the records that answered them: events never answered.

    >>> from kafka.producer.future import FutureProduceResult
    >>> from kafka.structs import TopicPartition
    >>> given_up = FutureProduceResult(TopicPartition("t", 0))
    >>> _ = given_up.failure(KafkaTimeoutError("expired in the accumulator"))
    >>> stored([given_up], 1.0)
    Traceback (most recent call last):
    kafka.errors.KafkaTimeoutError: KafkaTimeoutError: expired in the accumulator
    """
    deadline = time.monotonic() + seconds
    for future in futures:
        if not future.is_done and not future.wait(max(0.0, deadline - time.monotonic())):
            raise KafkaTimeoutError("a transaction's records were not acknowledged in time")
        error = failure(future)
        if error is not None:
            raise error if isinstance(error, KafkaError) else KafkaError(str(error))
