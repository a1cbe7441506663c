"""What the two Kafka buses share, whichever client they run on (kafka-python in
:mod:`meander.bus.kafka`, confluent-kafka in :mod:`meander.bus.confluent`): the limits, the
reachability check before any client is built, the topics known to exist, and the wait for a
topic just created to show in the broker's metadata.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from meander.bus.base import Bus, Delivered, Record, unknown_topic
from meander.bus.reach import reachable, unavailable
from meander.clock import DEFAULT_MAX_AHEAD_SECONDS, TimeWindow
from meander.exceptions import BusUnavailable

__all__ = ["UNSENT", "ClusterBus", "ClusterOptions"]

UNSENT = (
    "the Kafka producer closed with records the broker did not acknowledge within %.0f s: "
    "no caller was told they were stored"
)


class ClusterOptions(TypedDict, total=False):
    """What a Kafka bus takes beside the bootstrap address, on either client (see ClusterBus)."""

    client_id: str
    instance_id: str | None
    timeout: float
    max_message_bytes: int
    topic_limits: Mapping[str, int] | None
    max_ahead_seconds: float
    producer_options: Mapping[str, Any] | None
    consumer_options: Mapping[str, Any] | None
    read_committed: bool
    transaction_timeout: float


class ClusterBus(Bus):
    """A bus on an Apache Kafka cluster; a subclass says how its client describes a topic,
    creates topics, publishes and reads. Topics are never created implicitly, so a typo in a
    topic name is an error, not a new one-partition topic.

    ``producer_options`` and ``consumer_options`` are client settings that win over the bus's
    own; ``read_committed`` reads only committed records; ``transaction_timeout`` (seconds)
    bounds a transaction the broker keeps open."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "meander",
        instance_id: str | None = None,
        timeout: float = 10.0,
        max_message_bytes: int = 1_000_000,
        topic_limits: Mapping[str, int] | None = None,
        max_ahead_seconds: float = DEFAULT_MAX_AHEAD_SECONDS,
        producer_options: Mapping[str, Any] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
        read_committed: bool = False,
        transaction_timeout: float = 10.0,
    ) -> None:
        self.bootstrap, self.client_id, self.instance_id = bootstrap, client_id, instance_id
        self.timeout = timeout
        self.producer_overrides = dict(producer_options or {})
        self.consumer_overrides = dict(consumer_options or {})
        self.read_committed = read_committed
        self.transaction_timeout_ms = int(transaction_timeout * 1000)
        self.max_message_bytes = max_message_bytes
        self.topic_limits = dict(topic_limits or {})
        self.largest = max([max_message_bytes, *self.topic_limits.values()])
        """The largest record any topic takes: the clients' request limits allow it."""
        self.time_window = TimeWindow(max_ahead_seconds)
        self._known_topics: dict[str, int] = {}  # topic -> partitions, as last described
        if not reachable(bootstrap, timeout):
            # Fail here, before any client: kafka-python's failed bootstrap leaves sockets
            # open, librdkafka retries for ever in the background.
            raise unavailable(bootstrap, timeout)

    @abstractmethod
    def _partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, asked of the broker; None when it does not exist."""

    def partitions(self, topic: str) -> int:
        count = self._partition_count(topic)
        if count is None:
            raise unknown_topic(topic)
        return count

    def publish(self, records: Sequence[Record], timeout: float | None = None) -> list[Delivered]:
        return self.send(records).wait(timeout or self.timeout)

    def problem(self) -> str | None:
        """Why this bus cannot publish now (the broker unreachable), or None."""
        if not reachable(self.bootstrap, min(self.timeout, 2.0)):
            return f"no Kafka broker answers at {self.bootstrap}"
        return None

    def _member(self, group: str) -> str | None:
        """The static member id (KIP-345) of this process in ``group``: its restart takes its
        place and partitions back at once. None without an ``instance_id``."""
        return None if self.instance_id is None else f"{self.instance_id}-{group}"

    def _missing(self, topics: Mapping[str, int]) -> dict[str, int]:
        """Of ``topics`` (name -> partitions), those that do not exist yet."""
        return {name: n for name, n in topics.items() if not self._exists(name)}

    def _shown(self, created: Mapping[str, int]) -> None:
        """Wait until the topics just ``created`` show in the metadata the clients read: the
        controller answers once it created them, the brokers' metadata a moment later."""
        deadline = time.monotonic() + self.timeout
        for name in created:
            while self._partition_count(name) is None:
                if time.monotonic() > deadline:
                    raise BusUnavailable(
                        f"Kafka at {self.bootstrap} created {name!r} but did not show it "
                        f"within {self.timeout:.0f}s"
                    )
                time.sleep(0.05)
        self._known_topics.update(created)

    def _check_exist(self, topics: Iterable[str]) -> None:
        for topic in set(topics):
            if not self._exists(topic):
                raise unknown_topic(topic)

    def _exists(self, topic: str) -> bool:
        if topic not in self._known_topics:
            count = self._partition_count(topic)
            if count is not None:
                self._known_topics[topic] = count
        return topic in self._known_topics
