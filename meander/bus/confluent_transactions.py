"""Kafka transactions on confluent-kafka's (librdkafka's) transactional producer (the steps
common to both clients, and the guarantees, are in :mod:`meander.bus.transactions`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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

_GRACE_SECONDS = 1.0  # beyond librdkafka's own timeout, before a call is given up on


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
            metadata = consumer.group_metadata()
            _within(
                self._timeout,
                "sending the offsets to the transaction",
                lambda: producer.send_offsets_to_transaction(committed, metadata, self._timeout),
            )
            _within(
                self._timeout,
                "committing the transaction",
                lambda: producer.commit_transaction(self._timeout),
            )

    def _start(self, producer: Producer) -> None:
        with _client_errors():
            producer.init_transactions(self._timeout)

    def _close(self, producer: Producer, timeout: float) -> None:
        producer.flush(timeout)  # librdkafka frees it when the last reference goes


def _within(timeout: float, what: str, call: Callable[[], None]) -> None:
    """``call()``, given up on once ``timeout`` (and a grace second) has passed.

    librdkafka's coordinator requests can block past their own timeout when the group
    coordinator went down during the transaction (librdkafka issue 5456, open in 2.16): a
    predictor on confluent-kafka hung in send_offsets_to_transaction after a broker restart,
    for good, and did not stop on SIGTERM. Given up on, the transaction fails as any other
    (its producer is replaced, which fences it); the blocked call is left to its thread."""
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:  # handed to the caller's thread
            outcome.append(error)
        finally:
            done.set()

    threading.Thread(target=run, name=f"librdkafka: {what}", daemon=True).start()
    if not done.wait(timeout + _GRACE_SECONDS):
        raise BusUnavailable(f"{what} did not end within {timeout:g}s; the transaction is given up")
    if outcome[0] is not None:
        raise outcome[0]


@contextmanager
def _client_errors() -> Iterator[None]:
    """librdkafka's errors as the bus's: one it may retry (the broker did not answer in time)
    is BusUnavailable."""
    try:
        yield
    except KafkaException as error:
        failure = BusUnavailable if error.args[0].retriable() else BusError
        raise failure(f"a Kafka transaction failed: {error}") from error
