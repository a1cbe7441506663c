"""What librdkafka's errors mean to meander: which pass with a moment's wait, which end a client
for good, how the rest are logged (librdkafka retries them by itself), and what stands for a
record the binding cannot hand over."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from meander.bus.base import UNREADABLE, Message

__all__ = [
    "PASSING",
    "for_good",
    "log_client_error",
    "log_consumer_error",
    "on_commit",
    "unreadable",
]

log = logging.getLogger(__name__)

# Answers about a partition's leader or a group's coordinator that a moment's wait clears
# (librdkafka does not mark all of them retriable): a group's committed offset asked just after
# its broker came back from a pause was answered NOT_COORDINATOR.
PASSING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


def for_good(error: KafkaError) -> bool:
    """Whether a consumer's error means it failed for good. librdkafka hands a fatal error to
    the consumer's reader as an error of code ``_FATAL`` whose ``fatal()`` is False (only the
    client's error callback gets one marked fatal): a monitor fenced after a broker restart
    logged it as a warning and read nothing more, for good (seen in the fault test)."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def log_consumer_error(error: KafkaError) -> None:
    """An error handed to the consumer's reader that passes (broker down, leader moving,
    partition end): librdkafka recovers by itself; the component sees an empty batch and waits,
    as with kafka-python."""
    log.warning("the Kafka consumer reported: %s", error.str())


def log_client_error(error: KafkaError) -> None:
    """librdkafka's error callback: a fatal error is logged as one; the rest it retries."""
    if error.fatal():
        log.error("the Kafka client failed for good: %s", error.str())
    elif error.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
        log.warning("the Kafka client reported: %s", error.str())


def on_commit(group: str) -> Callable[[KafkaError | None, Any], None]:
    """The callback of asynchronous commits: a failed one is logged; the next covers it."""

    def committed(error: KafkaError | None, partitions: Any) -> None:
        if error is not None:
            log.warning("group %s: an asynchronous commit failed: %s", group, error.str())

    return committed


def unreadable(topic: str, partition: int, offset: int, error: Exception) -> Message:
    """A message standing for a record the binding cannot hand over: confluent-kafka decodes
    header names as UTF-8 and fails on any other (kafka-python and the Java client read them
    with replacement characters). It raised out of consume, on every step, for good."""
    cause = error.__cause__ or error.__context__ or error
    why = f"the Kafka client cannot read this record: a header name is not UTF-8 ({cause})"
    log.warning("%s[%d]@%d cannot be read: %s", topic, partition, offset, why)
    return Message(topic, partition, offset, None, None, ((UNREADABLE, why.encode()),), -1)
