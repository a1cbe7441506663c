"""Every metric meander exports, defined once on the process's default registry.

The names, labels and meanings are the contract that deploy/ (Prometheus rules, Grafana)
reads: counters end in ``_total``, times are in seconds, and no label takes an unbounded value.
``component`` is one of :data:`COMPONENTS`, ``stream`` a configured stream's name,
``partition`` a partition number, ``reason`` one of :data:`REASONS`, ``version`` a model
version still live in its learner (the series of a version that is gone are removed).

>>> from prometheus_client import REGISTRY
>>> EVENTS_CONSUMED.labels("predictor", "metrics-doc").inc(3)
>>> REGISTRY.get_sample_value(
...     "meander_events_consumed_total", {"component": "predictor", "stream": "metrics-doc"})
3.0
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from meander import vocabulary
from meander.bus.metrics import CONSUMERS_REPLACED, RECORDS_DELETED_UNREAD
from meander.telemetry.histogram import BatchHistogram

__all__ = [
    "ALERTS",
    "BATCH_SIZE",
    "BATCH_SIZES",
    "CHECKPOINT_TIMESTAMP",
    "COMPONENTS",
    "CONSUMERS_REPLACED",
    "CONSUMER_LAG",
    "DEADLETTERS",
    "END_TO_END_LATENCIES",
    "END_TO_END_LATENCY",
    "EVENTS_CONSUMED",
    "EVENTS_PRODUCED",
    "FEEDBACK_EXPIRED",
    "FEEDBACK_HELD",
    "FEEDBACK_JOINED",
    "FEEDBACK_UNMATCHED",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "LATENCIES",
    "MODEL_DECISIONS",
    "MODEL_METRIC",
    "MODEL_METRICS",
    "PREDICTIONS",
    "PREDICTION_LATENCY",
    "REASONS",
    "RECORDS_DELETED_UNREAD",
    "SERVED_METRIC",
    "WAITING_FOR_BACKEND",
    "WEBHOOK_DELIVERIES",
]

COMPONENTS = (*vocabulary.COMPONENTS, "service")  # what a series' ``component`` label may say
REASONS = (
    "undecodable",
    "contract",
    "schema",
    "too_large",
    "wrong_label",
    "time",
    "delivery_failed",
    "other",
)
MODEL_METRICS = ("accuracy", "accuracy_rolling", "f1", "log_loss", "mae", "mae_rolling", "rmse")

# 0.1 ms .. 10 s: a model's time per event, an HTTP answer.
LATENCIES: tuple[float, ...] = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# 1 ms .. 60 s: from an event's own time to its prediction on S.predictions.
END_TO_END_LATENCIES: tuple[float, ...] = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000)

EVENTS_CONSUMED = Counter(
    "meander_events_consumed_total",
    "Messages a component read from its topics.",
    ["component", "stream"],
)
EVENTS_PRODUCED = Counter(
    "meander_events_produced_total",
    "Records a component published (dead letters are counted apart).",
    ["component", "stream"],
)
PREDICTIONS = Counter(
    "meander_predictions_total",
    "Predictions published, by the role of the version that made them.",
    ["stream", "role"],
)
FEEDBACK_JOINED = Counter(
    "meander_feedback_joined_total", "Labels joined to their event and learned.", ["stream"]
)
FEEDBACK_EXPIRED = Counter(
    "meander_feedback_expired_total",
    "Events that left the label window without a label.",
    ["stream"],
)
FEEDBACK_UNMATCHED = Counter(
    "meander_feedback_unmatched_total",
    "Labels for an event that is unknown, already labelled or expired (dead-lettered).",
    ["stream"],
)
FEEDBACK_HELD = Gauge(
    "meander_feedback_held",
    "Labels read before their event, held for it (label_window.hold_seconds, max_held).",
    ["stream"],
)
DEADLETTERS = Counter(
    "meander_deadletters_total",
    "Messages sent to meander.deadletter, by the class of the reason.",
    ["component", "reason"],
)
PREDICTION_LATENCY = BatchHistogram(
    "meander_prediction_latency_seconds",
    "A model's time per event: its batch's scoring time divided by the batch's events, "
    "once per prediction (champion and challengers).",
    ["stream"],
    LATENCIES,
)
END_TO_END_LATENCY = BatchHistogram(
    "meander_end_to_end_latency_seconds",
    "From an event's time to the publication of its champion prediction.",
    ["stream"],
    END_TO_END_LATENCIES,
)
BATCH_SIZE = Histogram(
    "meander_batch_size",
    "Messages per batch a component consumed (empty polls are not batches).",
    ["component"],
    buckets=BATCH_SIZES,
)
CONSUMER_LAG = Gauge(
    "meander_consumer_lag",
    "Messages between a consumer's position and the end of its partition.",
    ["component", "topic", "partition"],
)
MODEL_METRIC = Gauge(
    "meander_model_metric",
    "The learner's prequential figures of each live model version.",
    ["stream", "version", "metric"],
)
SERVED_METRIC = Gauge(
    "meander_served_metric",
    "The learner's prequential figures of the predictions served (whichever version was champion).",
    ["stream", "metric"],
)
ALERTS = Counter(
    "meander_alerts_total", "Alerts published on meander.alerts.", ["stream", "kind", "severity"]
)
MODEL_DECISIONS = Counter(
    "meander_model_decisions_total",
    "Lifecycle decisions published on meander.models.",
    ["stream", "action"],
)
WEBHOOK_DELIVERIES = Counter(
    "meander_webhook_deliveries_total",
    "Webhook deliveries that ended, delivered or failed (after their retries).",
    ["outcome"],
)
WAITING_FOR_BACKEND = Gauge(
    "meander_waiting_for_backend",
    "1 while the process waits for this backend (kafka or redis) to answer before it starts.",
    ["backend"],
)
CHECKPOINT_TIMESTAMP = Gauge(
    "meander_checkpoint_timestamp_seconds",
    "Unix time of the learner's last checkpoint of the stream.",
    ["stream"],
)
HTTP_REQUESTS = Counter(
    "meander_http_requests_total",
    "HTTP requests the service answered, by route template.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "meander_http_request_duration_seconds",
    "From a request's arrival to the start of its answer, by route template.",
    ["method", "route"],
    buckets=LATENCIES,
)
