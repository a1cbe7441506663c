"""The Kafka bus, on kafka-python: an idempotent batching producer and topic admin; its consumers
are in :mod:`meander.bus.kafka_consumer`.

Every call is bounded by the bus's timeout: an unreachable broker raises BusUnavailable, it
never hangs. Topics are never created implicitly, so a typo in a topic name is an error, not a
new one-partition topic.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Unpack

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)

from meander.bus.base import (
    Consumer,
    Record,
    Sending,
    TopicPartition,
    Transactional,
)
from meander.bus.kafka_cluster import ClusterBus, ClusterOptions
from meander.bus.kafka_consumer import KafkaGroupConsumer
from meander.bus.kafka_records import read_into_messages
from meander.bus.kafka_sending import (
    KafkaSending,
    Placed,
    close_producer,
    delivery_errors,
    place,
    write,
)
from meander.bus.kafka_transactions import KafkaTransactional
from meander.bus.reach import unavailable
from meander.bus.transactions import TRANSACTION_RETRY_BACKOFF_MS
from meander.bus.whole_topic import METADATA_MAX_AGE_MS
from meander.exceptions import BusError, BusUnavailable

__all__ = ["KafkaBus", "KafkaSending"]

log = logging.getLogger(__name__)
UNKNOWN_TOPIC_OR_PARTITION = 3
NEVER_GIVE_UP_MS = 2**31 - 1  # the Java client's largest delivery.timeout.ms, ~24.8 days


class KafkaBus(ClusterBus):
    """A bus on an Apache Kafka cluster."""

    def __init__(self, bootstrap: str, **options: Unpack[ClusterOptions]) -> None:
        super().__init__(bootstrap, **options)
        largest = self.largest
        timeout_ms = int(self.timeout * 1000)
        self._common = {
            "bootstrap_servers": bootstrap.split(","),
            "client_id": self.client_id,
            "bootstrap_timeout_ms": timeout_ms,
            "request_timeout_ms": max(timeout_ms, 5_000),
            # Partitions added to a topic are read and written within seconds, not minutes.
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        }
        self._producer_options = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "max_request_size": max(largest + 4096, 1_048_576),
            "max_block_ms": timeout_ms,
            # Never give a record up: the idempotent producer retries it through any outage and
            # the broker drops the repeats, whereas a record given up on may have been stored
            # and could only be sent again (stored twice). Bounded by the buffer: once it is
            # full, send() refuses new records (known unsent) after max_block_ms.
            "delivery_timeout_ms": NEVER_GIVE_UP_MS,
            "allow_auto_create_topics": False,
            **self.producer_overrides,
        }
        self._consumer_options = {
            "enable_auto_commit": False,
            "allow_auto_create_topics": False,
            "fetch_max_wait_ms": 100,
            # A poll that finds no fetch to send or wait for (kafka-python 3.0.12's "idle") sleeps
            # retry_backoff_ms: at the default 100 ms, a predictor at 1,000 events/s held 5 % of
            # its events 90 - 130 ms (p95 of publish to prediction 91 -> 13 - 19 ms at 10 ms).
            "retry_backoff_ms": 10,
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 1_000,
            # Exactly once: an aborted transaction's records are never read.
            "isolation_level": "read_committed" if self.read_committed else "read_uncommitted",
            **self.consumer_overrides,
        }
        self._admin = _connect(KafkaAdminClient, bootstrap, **self._common)
        self._producer: KafkaProducer | None = None
        self._keyless = itertools.count()  # the partition of the next send's keyless records
        self._producer_lock = threading.Lock()

    def create_topics(
        self, topics: Mapping[str, int], configs: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        missing = self._missing(topics)
        if not missing:
            return
        configs = configs or {}
        requests = [
            NewTopic(name, n, 1, topic_configs=dict(configs.get(name, {})))
            for name, n in missing.items()
        ]
        try:
            self._admin.create_topics(requests, timeout_ms=int(self.timeout * 1000))
        except TopicAlreadyExistsError:
            pass  # another process created it between our look and our request
        except KafkaError as error:
            raise BusError(f"could not create topics {sorted(missing)}: {error}") from error
        self._shown(missing)

    def topic_settings(self, topic: str) -> dict[str, str]:
        self.partitions(topic)  # BusError for an unknown topic, of which Kafka answers nothing
        wanted = ConfigResource(ConfigResourceType.TOPIC, topic)
        try:
            found = self._admin.describe_configs([wanted])
        except KafkaError as error:
            raise BusError(f"could not read the settings of topic {topic!r}: {error}") from error
        entries = found.get("topic", {}).get(topic, {})
        return {
            name: entry["value"] for name, entry in entries.items() if entry["value"] is not None
        }

    def send(self, records: Sequence[Record]) -> Sending:
        self._check_topics(records)
        self.check_times(records)
        producer = self._ensure_producer()
        with (
            self._replacing_failed(producer),
            delivery_errors(self.bootstrap, len(records), self.timeout),
        ):
            sending = KafkaSending(
                self._write(producer, records),
                records,
                self._limit,
                producer,
                self.bootstrap,
                self.timeout,
                self._replacing_failed,
            )
            sending.hand_over()
        return sending

    def subscribe(
        self, topics: Sequence[str], group: str, *, from_beginning: bool = True
    ) -> Consumer:
        member = self._member(group)
        static = {} if member is None else {"group_instance_id": member}
        consumer = self._consumer(group_id=group, from_beginning=from_beginning, **static)
        consumer.subscribe(list(topics))
        return KafkaGroupConsumer(consumer, group, self._prober, join_timeout=self.timeout)

    def transactional(self, name: str) -> Transactional:
        return KafkaTransactional(
            f"{self._common['client_id']}-{name}",
            self._transactional_producer,
            self._check_known,
            self._write,
            self._limit,
            self.bootstrap,
            self.timeout,
        )

    def assign(self, partitions: Sequence[TopicPartition]) -> Consumer:
        self._check_exist(p.topic for p in partitions)
        consumer = self._consumer(group_id=None, from_beginning=True)
        consumer.assign([KafkaTopicPartition(*p) for p in partitions])
        return KafkaGroupConsumer(consumer, None, self._prober)

    def close(self) -> None:
        try:
            if self._producer is not None:
                close_producer(self._producer, self.timeout)
                self._producer = None
        finally:
            self._admin.close()

    def _consumer(
        self, *, group_id: str | None, from_beginning: bool, **options: Any
    ) -> KafkaConsumer:
        consumer = _connect(
            KafkaConsumer,
            self.bootstrap,
            # The caller's options win over the bus's (a test's metadata_max_age_ms, say).
            **{
                "group_id": group_id,
                "auto_offset_reset": "earliest" if from_beginning else "latest",
                **self._common,
                **self._consumer_options,
                **options,
            },
        )
        return read_into_messages(consumer)

    def _prober(self) -> KafkaConsumer:
        return self._consumer(group_id=None, from_beginning=True)

    def _ensure_producer(self) -> KafkaProducer:
        with self._producer_lock:
            if self._producer is None:
                self._producer = _connect(
                    KafkaProducer, self.bootstrap, **{**self._common, **self._producer_options}
                )
            return self._producer

    @contextmanager
    def _replacing_failed(self, producer: KafkaProducer) -> Iterator[None]:
        """Let a send's error through; first, when it left ``producer`` failed, put it aside.

        An idempotent producer that the broker refused a record with an error it cannot retry
        (an invalid timestamp, a keyless record for a compacted topic) stays failed in
        kafka-python 3.0: every later record fails with the same error. Shared by every
        request of a service, it would refuse all of them; a new one starts clean.
        """
        try:
            yield
        except BusError:
            if failed(producer):
                self._put_aside(producer)
            raise

    def _put_aside(self, producer: KafkaProducer) -> None:
        with self._producer_lock:
            if self._producer is not producer:
                return  # another thread already did
            self._producer = None
        _close_failed(producer)

    def problem(self) -> str | None:
        """Why this bus cannot publish now (the broker unreachable, the producer failed), or
        None."""
        unreachable = super().problem()
        if unreachable is not None:
            return unreachable
        producer = self._producer
        if producer is not None and failed(producer):
            return f"the Kafka producer failed: {_last_error(producer)}"
        return None

    def _transactional_producer(self, transactional_id: str) -> KafkaProducer:
        options = {
            **self._producer_options,
            # A transaction is aborted after its timeout anyway: a record is given up on (and
            # the transaction with it, its input read again) rather than retried for ever.
            "delivery_timeout_ms": 120_000,
            "retry_backoff_ms": TRANSACTION_RETRY_BACKOFF_MS,
            "transactional_id": transactional_id,
            "transaction_timeout_ms": self.transaction_timeout_ms,
        }
        return _connect(KafkaProducer, self.bootstrap, **{**self._common, **options})  # type: ignore[no-any-return]

    def _check_known(self, records: Sequence[Record]) -> None:
        """Refuse a batch with a record too large, of a timestamp out of the window, or for a
        topic that does not exist."""
        self.check_records(records)
        self._check_topics(records)

    def _check_topics(self, records: Sequence[Record]) -> None:
        self._check_exist(record.topic for record in records)

    def _write(self, producer: KafkaProducer, records: Sequence[Record]) -> list[Placed]:
        """``records`` placed on their partitions and written as record batches."""
        batches = write(records, place(producer, records, self._keyless), self._limit)
        # A record as written is a little larger than Record.size(): only when one is over the
        # limit is every record measured the way every bus measures them.
        if any(batch.encoded.largest > self.max_message_bytes for batch in batches):
            self.check_sizes(records)
        return batches

    @property
    def _limit(self) -> int:
        # Batches of several records stay under the broker's limit, so kafka-python never has
        # to split one (it cannot split a batch written whole).
        return min(int(self._producer_options["batch_size"]), self.max_message_bytes)

    def _partition_count(self, topic: str) -> int | None:
        try:
            (described,) = self._admin.describe_topics([topic])
        except KafkaError as error:
            raise BusUnavailable(
                f"Kafka at {self.bootstrap} did not describe {topic!r}: {error}"
            ) from error
        if described["error_code"] == UNKNOWN_TOPIC_OR_PARTITION:
            return None
        return len(described["partitions"])


def failed(producer: KafkaProducer) -> bool:
    """Whether kafka-python left ``producer`` in an error state that every later send gets."""
    manager = getattr(producer, "_transaction_manager", None)
    return manager is not None and bool(manager.has_error())


def _last_error(producer: KafkaProducer) -> object:
    return producer._transaction_manager.last_error


def _close_failed(producer: KafkaProducer) -> None:
    log.warning(
        "the Kafka producer failed for good (%s); the next records go through a new one",
        _last_error(producer),
    )
    producer.close(timeout=0)  # what it still holds failed with it


def _connect(client: Any, bootstrap: str, **options: Any) -> Any:
    try:
        return client(**options)
    except (KafkaConnectionError, KafkaTimeoutError) as error:
        raise unavailable(bootstrap, options["bootstrap_timeout_ms"] / 1000) from error
