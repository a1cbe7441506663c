"""A real Prometheus server against meander's components, running on the real Kafka and Redis.

Prometheus (Debian's /usr/bin/prometheus) runs on a free loopback port with a configuration
made from deploy/prometheus/prometheus.yml: the same jobs, aimed at the processes these tests
start (``meander run learner`` and ``meander run predictor``, see conftest.py), scraped every
second, and the rules of deploy/prometheus/rules/meander.yml. The tests wait for a scrape, find
our series through the HTTP API, check that every label of the metrics text takes a bounded
value, publish malformed events so that the predictor dead-letters a burst, and wait for
MeanderDeadLetterRate to fire. Every wait is for an event, with a generous deadline.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meander.telemetry.metrics import COMPONENTS, MODEL_METRICS, REASONS

pytestmark = pytest.mark.integration

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[3] / "deploy/grafana/dashboards").glob("*.json")
)
# What Grafana puts in place of the dashboard's variables before it sends a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$stream": ".*",
    "$metric": "accuracy",
}
# What each component has counted once events, labels and a bad event went through (lag is
# sampled every few seconds and checkpoints are periodic, so neither is certain yet).
EXPECTED = {
    "meander-predictor": {
        "meander_events_consumed_total",
        "meander_events_produced_total",
        "meander_predictions_total",
        "meander_deadletters_total",
        "meander_prediction_latency_seconds",
        "meander_end_to_end_latency_seconds",
        "meander_batch_size",
    },
    "meander-learner": {
        "meander_events_consumed_total",
        "meander_feedback_joined_total",
        "meander_model_metric",
        "meander_batch_size",
    },
}
Start = Callable[..., Any]
Labels = dict[str, tuple[str, ...]]


def test_components_are_scraped_and_their_metrics_parse_with_bounded_labels(
    component: Any, start_prometheus: Start, wait_for: Any, contract_labels: Labels
) -> None:
    prometheus = start_prometheus(component.targets)
    processes = [*component.processes, prometheus.process]
    for job in component.targets:
        up = f'up{{job="{job}"}} == 1'
        wait_for(lambda up=up: prometheus.query(up), f"a scrape of {job}", processes)
    component.publish(200)
    component.dead_letter(1)
    # The loop has run once the learner has joined labels and the predictor dead-lettered.
    for expr in ("meander_feedback_joined_total > 0", "meander_deadletters_total > 0"):
        wait_for(lambda expr=expr: prometheus.query(expr), expr, processes)
    [series] = prometheus.query("meander_deadletters_total")
    assert series["metric"] == {
        "__name__": "meander_deadletters_total",
        "job": "meander-predictor",
        "instance": component.target,
        "component": "predictor",
        "reason": "undecodable",
    }

    for job, target in component.targets.items():
        with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as answer:
            families = list(text_string_to_metric_families(answer.read().decode()))
        served = set()
        for family in (family for family in families if family.name.startswith("meander_")):
            name = contract_name(family.name, family.type, contract_labels)
            assert name in contract_labels, f"{target} serves {family.name}, not in the contract"
            for sample in family.samples:
                labels = {k: v for k, v in sample.labels.items() if k != "le"}
                assert sorted(labels) == sorted(contract_labels[name]), sample
                assert not unbounded(labels, component.stream), sample
                served.add(name)
        assert EXPECTED[job] <= served, f"{job} has no samples of {EXPECTED[job] - served}"


def contract_name(family: str, kind: str, contract: Labels) -> str:
    """The contract's name of a family the parser read: a counter's with its _total back, and
    the _created time of a counter or histogram (a family of its own) under its metric's."""
    base = family.removesuffix("_created")
    if base != family and family not in contract:
        family = base if base in contract else f"{base}_total"
    elif kind == "counter":
        family = f"{family}_total"
    return family


def unbounded(labels: dict[str, str], stream: str) -> list[str]:
    """The labels whose value is not one of a known, bounded set."""
    known = {
        "component": set(COMPONENTS),
        "reason": set(REASONS),
        "metric": set(MODEL_METRICS),
        "role": {"champion", "challenger"},
        "outcome": {"delivered", "failed"},
        "stream": {stream},
        "topic": {f"{stream}.{kind}" for kind in ("events", "predictions", "feedback")}
        | {"meander.alerts", "meander.models", "meander.deadletter"},
    }
    numbers = {"partition", "version"}
    return [
        name
        for name, value in labels.items()
        if (name in numbers and not value.isdigit()) or (name in known and value not in known[name])
    ]


def test_dead_letter_burst_fires_the_alert(
    component: Any, start_prometheus: Start, wait_for: Any
) -> None:
    prometheus = start_prometheus(component.targets)
    processes = [*component.processes, prometheus.process]
    # A first dead letter, seen before the burst, so that rate() measures the burst from it
    # (Prometheus takes no increase from a series' first sample).
    component.dead_letter(1)
    wait_for(lambda: prometheus.query("meander_deadletters_total > 0"), "a scrape", processes)
    assert not prometheus.alerts("MeanderDeadLetterRate", "firing")
    # rate() over 5 minutes: 1,000 dead letters make 3.3 a second, over the limit of 1.
    component.dead_letter(1000)
    [alert] = wait_for(
        lambda: prometheus.alerts("MeanderDeadLetterRate", "firing"), "the alert", processes
    )
    assert alert["labels"] == {
        "alertname": "MeanderDeadLetterRate",
        "component": "predictor",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"] == "The predictor dead-letters messages"


def test_rules_evaluate_and_dashboard_queries_are_accepted(
    component: Any, start_prometheus: Start, wait_for: Any
) -> None:
    prometheus = start_prometheus(component.targets)
    processes = [*component.processes, prometheus.process]
    # Rules meet the real series: the served figures the accuracy rule pairs one to one. The
    # learner scores what was served once it has both the prediction and the label, and shares
    # its figures as labels arrive: a second round of labels finds the first's predictions.
    component.publish(300)
    scored = "sum(meander_predictions_total) >= 300"
    wait_for(lambda: prometheus.query(scored), "the first round's predictions", processes)
    component.publish(400)
    served = 'meander_served_metric{metric="accuracy_rolling"}'
    [series] = wait_for(lambda: prometheus.query(served), "the served figures", processes)
    scraped = float(series["value"][0])

    def evaluated() -> list[dict[str, Any]]:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = all(evaluated_at(rule) > scraped for rule in rules)
        return rules if rules and done else []

    rules = wait_for(evaluated, "every rule to be evaluated", processes)
    assert {rule["name"]: rule["health"] for rule in rules} == {
        rule["name"]: "ok" for rule in rules
    }
    for path in DASHBOARDS:
        for expr in dashboard_queries(json.loads(path.read_text())):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            prometheus.query(expr)  # fails the test unless Prometheus accepts it


def evaluated_at(rule: dict[str, Any]) -> float:
    """When ``rule`` was last evaluated, in Unix seconds (0 before its first evaluation)."""
    when = rule["lastEvaluation"]
    if when.startswith("0001"):  # Go's zero time
        return 0.0
    return datetime.fromisoformat(when).timestamp()


def dashboard_queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)
