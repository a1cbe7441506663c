"""Kafka transactions on confluent-kafka's (librdkafka's) transactional producer (the steps
common to both clients, and the guarantees, are in :mod:`meander.bus.transactions`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from confluent_kafka import KafkaException, Producer
from confluent_kafka import TopicPartition as LibrdkafkaPartition

from meander.bus.base import Record, TopicPartition
from meander.bus.confluent_consumer import ConfluentConsumer
from meander.bus.confluent_sending import ConfluentSending
from meander.bus.member import GroupMember
from meander.bus.transactions import Transactions
from meander.exceptions import BusError, BusUnavailable

__all__ = ["ConfluentTransactional"]


class ConfluentTransactional(Transactions[Producer]):
    """librdkafka's transactional producer behind :class:`Transactions`."""

    member = ConfluentConsumer

    def _transact(
        self,
        producer: Producer,
        records: Sequence[Record],
        consumer: GroupMember,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        with _client_errors():
            producer.begin_transaction()
            sending = ConfluentSending(producer, records, self._bootstrap, self._timeout)
            sending.hand_over()
            sending.wait()  # a record refused fails the transaction with its own error
            committed = [LibrdkafkaPartition(p.topic, p.partition, o) for p, o in offsets.items()]
            producer.send_offsets_to_transaction(
                committed, consumer.group_metadata(), self._timeout
            )
            producer.commit_transaction(self._timeout)

    def _start(self, producer: Producer) -> None:
        with _client_errors():
            producer.init_transactions(self._timeout)

    def _close(self, producer: Producer, timeout: float) -> None:
        producer.flush(timeout)  # librdkafka frees it when the last reference goes


@contextmanager
def _client_errors() -> Iterator[None]:
    """librdkafka's errors as the bus's: one it may retry (the broker did not answer in time)
    is BusUnavailable."""
    try:
        yield
    except KafkaException as error:
        failure = BusUnavailable if error.args[0].retriable() else BusError
        raise failure(f"a Kafka transaction failed: {error}") from error
