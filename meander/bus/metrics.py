"""The bus's own metrics: Kafka consumers replaced, and records deleted before they were read.

Defined here, below :mod:`meander.telemetry` (which reads consumers' lag through the bus), and
listed by :mod:`meander.telemetry.metrics` with every other metric.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["CONSUMERS_REPLACED", "RECORDS_DELETED_UNREAD"]

CONSUMERS_REPLACED = Counter(
    "meander_kafka_consumers_replaced_total",
    "Kafka group consumers replaced by a new client (cause: failed for good, or stalled).",
    ["group", "cause"],
)
RECORDS_DELETED_UNREAD = Counter(
    "meander_records_deleted_unread_total",
    "Records Kafka deleted (retention) before a consumer group or reader read them: lost to it.",
    ["topic", "group"],
)
