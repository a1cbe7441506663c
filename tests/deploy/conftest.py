"""Fixtures of the deploy/ checks: the monitoring tools, the metrics contract, PromQL names.

The tools are Debian's: ``promtool`` and ``prometheus`` from the prometheus package, ``amtool``
from prometheus-alertmanager (``make system-deps`` installs both). A missing tool skips its
tests on a laptop and fails them under CI=true, as the Kafka and Redis fixtures do.

The contract (the metric names that deploy/ relies on) is written out once here. Rules and
dashboards are checked against it, and it is checked against the names meander's code registers.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}

# name as exposed (counters with _total) -> (type, label names)
CONTRACT_LABELS = {
    "meander_events_consumed_total": ("counter", ("component", "stream")),
    "meander_events_produced_total": ("counter", ("component", "stream")),
    "meander_predictions_total": ("counter", ("stream", "role")),
    "meander_feedback_joined_total": ("counter", ("stream",)),
    "meander_feedback_expired_total": ("counter", ("stream",)),
    "meander_feedback_unmatched_total": ("counter", ("stream",)),
    "meander_feedback_held": ("gauge", ("stream",)),
    "meander_deadletters_total": ("counter", ("component", "reason")),
    "meander_prediction_latency_seconds": ("histogram", ("stream",)),
    "meander_end_to_end_latency_seconds": ("histogram", ("stream",)),
    "meander_batch_size": ("histogram", ("component",)),
    "meander_consumer_lag": ("gauge", ("component", "topic", "partition")),
    "meander_model_metric": ("gauge", ("stream", "version", "metric")),
    "meander_served_metric": ("gauge", ("stream", "metric")),
    "meander_alerts_total": ("counter", ("stream", "kind", "severity")),
    "meander_model_decisions_total": ("counter", ("stream", "action")),
    "meander_webhook_deliveries_total": ("counter", ("outcome",)),
    "meander_checkpoint_timestamp_seconds": ("gauge", ("stream",)),
    "meander_waiting_for_backend": ("gauge", ("backend",)),
    "meander_records_deleted_unread_total": ("counter", ("topic", "group")),
    "meander_kafka_consumers_replaced_total": ("counter", ("group", "cause")),
    "meander_http_requests_total": ("counter", ("method", "route", "status")),
    "meander_http_request_duration_seconds": ("histogram", ("method", "route")),
}
CONTRACT = {name: kind for name, (kind, _labels) in CONTRACT_LABELS.items()}
# Series Prometheus makes itself: whether a target answered, and the state of its alerts.
BUILT_IN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
SUFFIXES = {
    "counter": ("", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    """``tool(name)``: the path of a monitoring tool, or a skip (a failure under CI)."""

    def find(name: str) -> str:
        path = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if path is None:
            message = (
                f"{name} is not installed; it comes with Debian's {PACKAGES[name]} package "
                f"(`make system-deps` installs it)"
            )
            if IN_CI:
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        return path

    return find


@pytest.fixture(scope="session")
def contract() -> dict[str, str]:
    """The contract's metrics: {name as exposed: type}."""
    return dict(CONTRACT)


@pytest.fixture(scope="session")
def contract_labels() -> dict[str, tuple[str, ...]]:
    """The label names of each of the contract's metrics."""
    return {name: labels for name, (_kind, labels) in CONTRACT_LABELS.items()}


@pytest.fixture(scope="session")
def series_names() -> Callable[[dict[str, str]], frozenset[str]]:
    """``series_names(metrics)``: every series name that metrics {name: type} expose, as a
    query may use them (a histogram's _bucket, _sum and _count), and Prometheus' own."""

    def expand(metrics: dict[str, str]) -> frozenset[str]:
        names = {name + suffix for name, kind in metrics.items() for suffix in SUFFIXES[kind]}
        return frozenset(names) | BUILT_IN

    return expand


@pytest.fixture(scope="session")
def metric_names() -> Callable[[str], set[str]]:
    """``metric_names(expr)``: the metric names a PromQL expression (maybe with Grafana's
    ``$variables``) selects."""
    return metric_names_in


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# Possessive: a function name must not match as a shorter identifier before its "(".
_IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*+(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})


def metric_names_in(expr: str) -> set[str]:
    """The names of the series ``expr`` selects: identifiers that are not functions, keywords,
    label names or values, durations or Grafana variables."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub("", text)
    text = re.sub(r"\boffset\s+\S+", "", text)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS}
