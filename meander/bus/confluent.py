"""The Kafka bus on confluent-kafka (librdkafka), the optional faster client: the same contract,
guarantees and refusals as :class:`~meander.bus.kafka.KafkaBus`, at a fraction of the CPU per
record (``pip install 'meander[fast]'``, then ``kafka_client = "confluent-kafka"``).

The producer is idempotent with ``acks=all`` and never gives a record up; records are placed as
Kafka's Java client places them (murmur2 of the key), so both clients agree on every key's
partition. Every call is bounded by the bus's timeout: an unreachable broker raises
BusUnavailable, it never hangs. Topics are never created implicitly. Transactions (exactly
once) use librdkafka's transactional producer (:mod:`meander.bus.confluent_transactions`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Unpack

from confluent_kafka import Consumer as LibrdkafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from meander.bus.base import (
    Consumer,
    Record,
    Sending,
    TopicPartition,
    Transactional,
    unknown_topic,
)
from meander.bus.confluent_consumer import ConfluentConsumer
from meander.bus.confluent_errors import log_client_error, on_commit
from meander.bus.confluent_sending import ConfluentSending
from meander.bus.confluent_stall import Stall
from meander.bus.confluent_transactions import ConfluentTransactional
from meander.bus.group_members import GroupMembers
from meander.bus.kafka_cluster import UNSENT, ClusterBus, ClusterOptions
from meander.bus.reach import unavailable
from meander.bus.transactions import TRANSACTION_RETRY_BACKOFF_MS
from meander.bus.whole_topic import METADATA_MAX_AGE_MS
from meander.exceptions import BusError, BusUnavailable

__all__ = ["QUEUED_BYTES", "ConfluentBus"]

log = logging.getLogger(__name__)
QUEUED_BYTES = 8 * 2**20  # records a consumer holds fetched ahead of its reader, at most


class ConfluentBus(ClusterBus):
    """A bus on an Apache Kafka cluster, through confluent-kafka."""

    def __init__(self, bootstrap: str, **options: Unpack[ClusterOptions]) -> None:
        super().__init__(bootstrap, **options)
        largest = self.largest
        timeout_ms = int(self.timeout * 1000)
        self._common: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": self.client_id,
            "socket.timeout.ms": max(timeout_ms, 5_000),
            # Partitions added to a topic are read and written within seconds, not minutes.
            "topic.metadata.refresh.interval.ms": METADATA_MAX_AGE_MS,
            "error_cb": log_client_error,
            "logger": logging.getLogger("meander.bus.librdkafka"),  # not straight to stderr
        }
        self._producer_options = {
            "acks": "all",
            "enable.idempotence": True,
            # A batch is handed over whole: a lone record should not wait for company.
            "linger.ms": 1,
            "message.max.bytes": max(largest + 4096, 1_048_576),
            # Never give a record up (0: no timeout): the idempotent producer retries it through
            # any outage and the broker drops the repeats, whereas a record given up on may have
            # been stored and could only be sent again (stored twice).
            "message.timeout.ms": 0,
            "partitioner": "murmur2_random",  # the Java client's (and meander's) placement
            "allow.auto.create.topics": False,
            **self.producer_overrides,
        }
        self._consumer_options = {
            "enable.auto.commit": False,
            "allow.auto.create.topics": False,
            "fetch.wait.max.ms": 100,
            # What librdkafka fetches ahead of the reader, bounded: by default up to 64 MiB
            # (and 100,000 records a partition), which a predictor on a backlog filled as soon as
            # it started (RSS +70 MiB, peak 342 MiB over 1,000,000 events). 8 MiB is over half a
            # second of records at the predictor's pace, many fetches' worth on a local network.
            "queued.max.messages.kbytes": max(largest + 4096, QUEUED_BYTES) // 1024,
            "queued.min.messages": 10_000,
            # A full queue postpones the partition's next fetch by this much (librdkafka's
            # default is a second: a reader faster than that drains the queue and then waits).
            "fetch.queue.backoff.ms": 20,
            "fetch.max.bytes": max(largest + 4096, QUEUED_BYTES),
            "receive.message.max.bytes": max(largest + 4096, QUEUED_BYTES) + 1_000_000,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            # Exactly once: an aborted transaction's records are never read (librdkafka reads
            # committed records only by default; kafka-python and the Java client do not).
            "isolation.level": "read_committed" if self.read_committed else "read_uncommitted",
            **self.consumer_overrides,
        }
        self._admin = AdminClient({**self._common})
        # Who a group lists, for a member that may have stopped rejoining it (kafka-python's
        # admin client: librdkafka's aborted the process when asked during a broker restart).
        self._group_members = GroupMembers(bootstrap, self.timeout, self.client_id)
        self._producer: Producer | None = None
        self._producer_lock = threading.Lock()

    def create_topics(
        self, topics: Mapping[str, int], configs: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        missing = self._missing(topics)
        if not missing:
            return
        configs = configs or {}
        requests = [
            NewTopic(name, n, 1, config=dict(configs.get(name, {}))) for name, n in missing.items()
        ]
        futures = self._admin.create_topics(requests, request_timeout=self.timeout)
        for future in futures.values():
            try:
                future.result(timeout=self.timeout)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(f"could not create topics {sorted(missing)}: {error}") from error
            except TimeoutError as error:
                raise unavailable(self.bootstrap, self.timeout) from error
        self._shown(missing)

    def topic_settings(self, topic: str) -> dict[str, str]:
        self.partitions(topic)  # BusError for an unknown topic
        [future] = self._admin.describe_configs(
            [ConfigResource("topic", topic)], request_timeout=self.timeout
        ).values()
        try:
            entries = future.result(timeout=self.timeout)
        except KafkaException as error:
            raise BusError(f"could not read the settings of topic {topic!r}: {error}") from error
        except TimeoutError as error:
            raise unavailable(self.bootstrap, self.timeout) from error
        return {name: entry.value for name, entry in entries.items() if entry.value is not None}

    def send(self, records: Sequence[Record]) -> Sending:
        self._check_known(records)
        sending = ConfluentSending(self._ensure_producer(), records, self.bootstrap, self.timeout)
        sending.hand_over()
        return sending

    def subscribe(
        self, topics: Sequence[str], group: str, *, from_beginning: bool = True
    ) -> Consumer:
        member = self._member(group)
        static: dict[str, Any] = {} if member is None else {"group.instance.id": member}
        session = int(self._consumer_options["session.timeout.ms"]) / 1000
        stall = Stall(partial(self._group_members, group), member, after=2 * session)
        consumer = self._consumer(
            group, from_beginning, stall=stall, on_commit=on_commit(group), **static
        )
        consumer.subscribe(topics)
        return consumer

    def transactional(self, name: str) -> Transactional:
        return ConfluentTransactional(
            f"{self._common['client.id']}-{name}",
            self._transactional_producer,
            self._check_known,
            self.bootstrap,
            self.timeout,
        )

    def assign(self, partitions: Sequence[TopicPartition]) -> Consumer:
        self._check_exist(p.topic for p in partitions)
        # librdkafka wants a group even to read alone; this one is never joined nor committed to.
        alone: dict[str, Any] = {"group.id": f"meander-assign-{uuid.uuid4().hex}"}
        consumer = self._consumer(None, True, **alone)
        consumer.assign_partitions(partitions)
        return consumer

    def close(self) -> None:
        if self._producer is not None:
            if self._producer.flush(self.timeout):
                log.warning(UNSENT, self.timeout)
            self._producer = None

    def _consumer(
        self, group: str | None, from_beginning: bool, *, stall: Stall | None = None, **options: Any
    ) -> ConfluentConsumer:
        config = {
            **self._common,
            "group.id": group,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            **self._consumer_options,
            **options,
        }
        return ConfluentConsumer(
            LibrdkafkaConsumer(config),
            group,
            from_beginning=from_beginning,
            bootstrap=self.bootstrap,
            timeout=self.timeout,
            prober=self._prober,
            renew=lambda: LibrdkafkaConsumer(config),
            stall=stall,
        )

    def _prober(self) -> LibrdkafkaConsumer:
        """A client for offset requests alone: never assigned, it never fetches (librdkafka wants
        a group even so; this one is never joined). It reads as the consumers do: the last
        stable offset is the end when they read committed records."""
        return LibrdkafkaConsumer(
            {
                **self._common,
                **self._consumer_options,
                "group.id": f"meander-probe-{uuid.uuid4().hex}",
            }
        )

    def _ensure_producer(self) -> Producer:
        with self._producer_lock:
            if self._producer is None:
                self._producer = Producer({**self._common, **self._producer_options})
            return self._producer

    def _transactional_producer(self, transactional_id: str) -> Producer:
        return Producer(
            {
                **self._common,
                **self._producer_options,
                # A transaction is aborted after its timeout anyway: a record is given up on
                # (and the transaction with it, its input read again) rather than retried.
                "message.timeout.ms": self.transaction_timeout_ms,
                "retry.backoff.ms": TRANSACTION_RETRY_BACKOFF_MS,
                "transactional.id": transactional_id,
                "transaction.timeout.ms": self.transaction_timeout_ms,
            }
        )

    def _check_known(self, records: Sequence[Record]) -> None:
        self._check_topics(records)
        self.check_records(records)

    def _check_topics(self, records: Sequence[Record]) -> None:
        """Refuse a batch with a record for a topic, or a partition, that does not exist."""
        counts: dict[str, int] = {}
        for record in records:
            topic, partition = record.topic, record.partition
            count = counts.get(topic)
            if count is None:
                if not self._exists(topic):
                    raise unknown_topic(topic)
                count = counts[topic] = self._known_topics[topic]
            if partition is not None and not 0 <= partition < count:
                self._known_topics.pop(topic)  # partitions may have been added since
                if not self._exists(topic) or partition >= self._known_topics[topic]:
                    raise BusError(f"{topic} has no partition {partition} (has {count})")

    def _partition_count(self, topic: str) -> int | None:
        (future,) = self._admin.describe_topics(
            TopicCollection([topic]), request_timeout=self.timeout
        ).values()
        try:
            described = future.result(timeout=self.timeout + 1)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            raise BusUnavailable(
                f"Kafka at {self.bootstrap} did not describe {topic!r}: {error}"
            ) from error
        except TimeoutError as error:
            raise unavailable(self.bootstrap, self.timeout) from error
        return len(described.partitions)
