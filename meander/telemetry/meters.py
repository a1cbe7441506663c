"""What components call to count: bound label sets, and the figures of whole batches.

Counting costs a lock and an addition, so components count per batch, never per event, and
bind their label values once (:class:`Meter`) rather than look them up on every call.

>>> from prometheus_client import REGISTRY
>>> meter = Meter("predictor", "meters-doc")
>>> meter.read(500)
>>> meter.produced.inc(500)
>>> REGISTRY.get_sample_value(
...     "meander_events_consumed_total", {"component": "predictor", "stream": "meters-doc"})
500.0
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from meander.events import Alert, ModelEvent
from meander.telemetry.metrics import (
    ALERTS,
    BATCH_SIZE,
    CHECKPOINT_TIMESTAMP,
    EVENTS_CONSUMED,
    EVENTS_PRODUCED,
    FEEDBACK_HELD,
    MODEL_DECISIONS,
    MODEL_METRIC,
    MODEL_METRICS,
    SERVED_METRIC,
)

__all__ = [
    "Meter",
    "Tally",
    "ages",
    "announce",
    "count_published",
    "forget_learner",
    "set_model_metrics",
]


class Meter:
    """One component's counters on one stream (``""`` for a component over every stream)."""

    def __init__(self, component: str, stream: str = "") -> None:
        self.component, self.stream = component, stream
        self.consumed = EVENTS_CONSUMED.labels(component, stream)
        self.produced = EVENTS_PRODUCED.labels(component, stream)
        self.batch_size = BATCH_SIZE.labels(component)

    def read(self, messages: int) -> None:
        """Count a consumed batch of ``messages`` (an empty poll is no batch)."""
        if messages:
            self.consumed.inc(messages)
            self.batch_size.observe(messages)


class Tally:
    """Feeds a counter from a running total kept elsewhere, by its increase since last seen.

    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> expired = Counter("doc_expired", "Expired.", registry=registry)
    >>> tally = Tally(expired, start=10)  # resumed from a checkpoint that had seen 10
    >>> tally.update(12); tally.update(12)
    >>> registry.get_sample_value("doc_expired_total")
    2.0
    """

    def __init__(self, counter: Counter, start: int = 0) -> None:
        self.counter, self.seen = counter, start

    def update(self, total: int) -> None:
        if total > self.seen:
            self.counter.inc(total - self.seen)
        self.seen = total


def ages(times: Sequence[datetime], now: float) -> list[float]:
    """Seconds from each time to ``now`` (a Unix time); a naive time is UTC, a future one 0.

    >>> ages([datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(2024, 1, 1)], 1704067202.5)
    [1.5, 2.5]
    """
    found = [now - moment.timestamp() for moment in times]
    if any(moment.tzinfo is None for moment in times):  # rare, and dearer to check one by one
        found = [now - (m if m.tzinfo else m.replace(tzinfo=UTC)).timestamp() for m in times]
    return [age if age > 0.0 else 0.0 for age in found]


def count_published(
    component: str, payloads: Sequence[Any], log: logging.Logger, stream: str = ""
) -> None:
    """Count and log the alerts and lifecycle decisions ``component`` just published.

    Each is logged at INFO with its stream and the event it was found at (``event_id``), an
    alert with its ``kind`` and ``severity``: it is meander doing its job, and the alerting
    happens in Prometheus and the notifier. The count of records published goes to
    ``meander_events_produced_total``.
    """
    EVENTS_PRODUCED.labels(component, stream).inc(len(payloads))
    announce(component, payloads, log)


def announce(component: str, payloads: Sequence[Any], log: logging.Logger) -> None:
    """Count by kind and log the alerts and decisions among ``payloads`` (not the records: a
    caller whose publishing is counted elsewhere, such as the service's, uses this alone)."""
    for payload in payloads:
        if isinstance(payload, Alert):
            ALERTS.labels(payload.stream, payload.kind, payload.severity).inc()
            log.info(
                "%s alert on %s: %s",
                payload.kind,
                payload.stream,
                payload.message or payload.statistic,
                extra=_extra(component, payload, kind=payload.kind, severity=payload.severity),
            )
        elif isinstance(payload, ModelEvent):
            MODEL_DECISIONS.labels(payload.stream, payload.action).inc()
            log.info(
                "%s: %s v%s: %s",
                payload.stream,
                payload.action,
                payload.version,
                payload.reason,
                extra=_extra(component, payload, action=payload.action, version=payload.version),
            )


def _extra(component: str, payload: Alert | ModelEvent, **fields: Any) -> dict[str, Any]:
    return {"component": component, "stream": payload.stream, "event_id": payload.at_event} | (
        fields
    )


_live_lock = threading.Lock()
_live: dict[str, set[str]] = {}  # stream -> versions with series


def set_model_metrics(
    stream: str, versions: Mapping[str, Mapping[str, float]], served: Mapping[str, float]
) -> None:
    """Set each live version's figures and the served figures; remove versions not live.

    >>> from prometheus_client import REGISTRY
    >>> set_model_metrics("models-doc", {"3": {"accuracy": 0.8, "n": 10}}, {"accuracy": 0.7})
    >>> set_model_metrics("models-doc", {"4": {"accuracy": 0.9}}, {"accuracy": 0.75})
    >>> get = REGISTRY.get_sample_value
    >>> get("meander_model_metric", {"stream": "models-doc", "version": "3", "metric": "accuracy"})
    >>> get("meander_model_metric", {"stream": "models-doc", "version": "4", "metric": "accuracy"})
    0.9
    """
    with _live_lock:
        before = _live.get(stream, set())
        for version in before - set(versions):
            _remove_version(stream, version)
        for version, figures in versions.items():
            for metric in MODEL_METRICS:
                if metric in figures:
                    MODEL_METRIC.labels(stream, version, metric).set(figures[metric])
        _live[stream] = set(versions)
        for metric in MODEL_METRICS:
            if metric in served:
                SERVED_METRIC.labels(stream, metric).set(served[metric])


def forget_learner(stream: str) -> None:
    """Remove the series a learner of ``stream`` sets in this process: it no longer owns the
    stream, and figures (or a checkpoint time) left frozen here would mislead, or alert."""
    with _live_lock:
        for version in _live.pop(stream, set()):
            _remove_version(stream, version)
        for metric in MODEL_METRICS:
            _remove(SERVED_METRIC, stream, metric)
        _remove(CHECKPOINT_TIMESTAMP, stream)
        _remove(FEEDBACK_HELD, stream)


def _remove_version(stream: str, version: str) -> None:
    for metric in MODEL_METRICS:
        _remove(MODEL_METRIC, stream, version, metric)


def _remove(metric: Any, *labels: str) -> None:
    with suppress(KeyError):  # never set
        metric.remove(*labels)
