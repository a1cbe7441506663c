"""The event bus: Kafka in production (on kafka-python, or on confluent-kafka with the ``fast``
extra), an in-process log for the demo and unit tests.

Every backend keeps one contract (:class:`Bus`, :class:`Consumer`); :func:`connect_bus` picks one
from the settings. Above the contract, :mod:`meander.bus.ordered` reads several partitions in an
order that depends on the data alone, and :mod:`meander.bus.inflight` tracks batches in flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meander import topics
from meander.bus.base import (
    Bus,
    Consumer,
    Delivered,
    Message,
    Record,
    Sending,
    Sent,
    TopicPartition,
    Transactional,
    next_offsets,
)
from meander.bus.memory import MemoryBroker, MemoryBus
from meander.bus.outbox import Outbox

if TYPE_CHECKING:
    from meander.bus.confluent import ConfluentBus
    from meander.bus.kafka import KafkaBus
    from meander.config import Settings

__all__ = [
    "Bus",
    "Consumer",
    "Delivered",
    "MemoryBroker",
    "MemoryBus",
    "Message",
    "Outbox",
    "Record",
    "Sending",
    "Sent",
    "TopicPartition",
    "Transactional",
    "connect_bus",
    "embedded_bus",
    "next_offsets",
]


def connect_bus(settings: Settings) -> Bus:
    """The Kafka bus when ``kafka_bootstrap`` is set (on the client ``kafka_client`` names),
    else the process-wide embedded one."""
    if settings.kafka_bootstrap is None:
        return embedded_bus(settings)
    kafka: type[KafkaBus | ConfluentBus]
    if settings.kafka_client == "confluent-kafka":
        from meander.bus.confluent import ConfluentBus  # librdkafka only when chosen

        kafka = ConfluentBus
    else:
        from meander.bus.kafka import KafkaBus  # kafka-python's network stack only when used

        kafka = KafkaBus
    return kafka(
        settings.kafka_bootstrap,
        client_id=settings.client_id,
        instance_id=settings.instance_id,
        timeout=settings.kafka_timeout_seconds,
        max_message_bytes=settings.max_event_bytes,
        # Always: a record of a transaction its producer aborted never happened, whoever wrote
        # it, and without transactions the last stable offset is the end (nothing to wait for).
        read_committed=True,
        transaction_timeout=settings.transaction_timeout_seconds,
        topic_limits=_limits(settings),
        max_ahead_seconds=settings.max_clock_skew_seconds,
    )


def embedded_bus(settings: Settings, broker: MemoryBroker | None = None) -> MemoryBus:
    """The in-process bus on ``broker`` (by default the process-wide one), with the limits of
    ``settings``: a run that needs backends of its own passes a new :class:`MemoryBroker`."""
    return MemoryBus(
        broker,
        max_message_bytes=settings.max_event_bytes,
        topic_limits=_limits(settings),
        max_ahead_seconds=settings.max_clock_skew_seconds,
    )


def _limits(settings: Settings) -> dict[str, int]:
    # The changelog's records are models and checkpoints: they may be larger than events.
    return {topics.STATE: settings.state_max_bytes}
