"""Records that Kafka deleted before a consumer read them, counted and logged.

A consumer whose position fell below its partition's log start (retention deleted the records
it had not read yet, while it was down or behind; or someone deleted them) is answered
``OFFSET_OUT_OF_RANGE``, and both clients then move it to the log start by themselves
(``auto_offset_reset = earliest``), silently: the records in between are lost to it and nobody
is told. Each client's consumer notices the jump (:mod:`meander.bus.kafka_consumer`,
:mod:`meander.bus.confluent_consumer`) and reports it here: an ERROR log line and
``meander_records_deleted_unread_total{topic, group}``, which Prometheus alerts on.

>>> from prometheus_client import REGISTRY
>>> deleted_unread("doc.events", 0, "doc-group", position=3, log_start=7)
4
>>> REGISTRY.get_sample_value(
...     "meander_records_deleted_unread_total", {"topic": "doc.events", "group": "doc-group"})
4.0
>>> deleted_unread("doc.events", 0, "doc-group", position=7, log_start=7)
0
"""

from __future__ import annotations

import logging

from meander.bus.metrics import RECORDS_DELETED_UNREAD

__all__ = ["deleted_unread"]

log = logging.getLogger(__name__)


def deleted_unread(
    topic: str, partition: int, group: str | None, *, position: int, log_start: int
) -> int:
    """Count and log the records between ``position`` (where the consumer was to read next)
    and ``log_start`` (the partition's first record now); return how many."""
    lost = log_start - position
    if lost <= 0:
        return 0
    RECORDS_DELETED_UNREAD.labels(topic, group or "").inc(lost)
    log.error(
        "%s[%d]: %d records (offsets %d to %d) were deleted by Kafka before %s read them "
        "(retention shorter than the consumer's outage or lag?); reading on from %d",
        topic,
        partition,
        lost,
        position,
        log_start - 1,
        f"group {group}" if group else "this reader",
        log_start,
    )
    return lost
