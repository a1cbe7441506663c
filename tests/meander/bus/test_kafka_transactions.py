"""A kafka-python transaction commits only once the broker stored every batch of it: a batch the
producer gave up on, or one the broker refused a record of, stops the commit."""

from __future__ import annotations

import time

import pytest
from kafka.errors import (
    InvalidProducerEpochError,
    KafkaError,
    KafkaTimeoutError,
    NotEnoughReplicasError,
)
from kafka.producer.future import FutureProduceResult
from kafka.structs import TopicPartition

from meander.bus.kafka_transactions import stored

PARTITION = TopicPartition("answers", 0)


def acknowledged(errors: object = None) -> FutureProduceResult:
    future = FutureProduceResult(PARTITION)
    future.success((41, -1, errors))
    return future


def given_up(error: KafkaError) -> FutureProduceResult:
    future = FutureProduceResult(PARTITION)
    future.failure(error)
    return future


def test_batches_the_broker_stored_let_the_transaction_commit() -> None:
    stored([acknowledged(), acknowledged()], seconds=0.1)


@pytest.mark.parametrize(
    "error",
    [
        KafkaTimeoutError("expired after the delivery timeout"),  # retriable: no abort by itself
        NotEnoughReplicasError("retries exhausted"),
        InvalidProducerEpochError("the broker aborted the transaction on its timeout"),
    ],
)
def test_a_batch_given_up_on_stops_the_commit(error: KafkaError) -> None:
    with pytest.raises(type(error)):
        stored([acknowledged(), given_up(error)], seconds=0.1)


def test_a_record_the_broker_refused_stops_the_commit() -> None:
    refused = acknowledged(errors=lambda index: NotEnoughReplicasError(f"record {index}"))

    with pytest.raises(NotEnoughReplicasError, match="record 0"):
        stored([refused], seconds=0.1)


def test_a_batch_not_acknowledged_in_time_stops_the_commit() -> None:
    started = time.monotonic()

    with pytest.raises(KafkaTimeoutError, match="in time"):
        stored([acknowledged(), FutureProduceResult(PARTITION)], seconds=0.3)
    assert time.monotonic() - started < 5
