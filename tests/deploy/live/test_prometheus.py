"""A real Prometheus server against a running meander process.

Prometheus (Debian's /usr/bin/prometheus) runs on a free loopback port with a configuration
made from deploy/prometheus/prometheus.yml: the same jobs, aimed at the processes these tests
start, scraped every second, and the rules of deploy/prometheus/rules/meander.yml (see
``start_prometheus`` in conftest.py). The tests wait for a scrape, find our series through the
HTTP API, provoke a dead-letter burst and wait for MeanderDeadLetterRate to fire. Every wait is
for an event, with a generous deadline.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards").glob("*.json")
)
# What Grafana puts in place of the dashboard's variables before it sends a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$stream": ".*",
    "$metric": "accuracy",
}
Start = Callable[..., Any]


def test_component_metrics_parse_and_are_scraped(
    component: Any, start_prometheus: Start, wait_for: Any
) -> None:
    with urllib.request.urlopen(f"http://{component.target}/metrics", timeout=10) as answer:
        families = {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
    assert families["meander_deadletters"].type == "counter"

    prometheus = start_prometheus({"meander-predictor": component.target})
    processes = [component.process, prometheus.process]
    wait_for(lambda: prometheus.query('up{job="meander-predictor"} == 1'), "a scrape", processes)
    component.dead_letter(1)
    [series] = wait_for(
        lambda: prometheus.query("meander_deadletters_total > 0"), "our series", processes
    )
    assert series["metric"] == {
        "__name__": "meander_deadletters_total",
        "job": "meander-predictor",
        "instance": component.target,
        "component": "predictor",
        "reason": "undecodable",
    }


def test_dead_letter_burst_fires_the_alert(
    component: Any, start_prometheus: Start, wait_for: Any
) -> None:
    prometheus = start_prometheus({"meander-predictor": component.target})
    processes = [component.process, prometheus.process]
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
    prometheus = start_prometheus({"meander-predictor": component.target})

    def evaluated() -> list[dict[str, Any]]:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        # A rule not evaluated yet reports Go's zero time, year 1.
        done = all(not rule["lastEvaluation"].startswith("0001") for rule in rules)
        return rules if rules and done else []

    rules = wait_for(evaluated, "every rule to be evaluated", [prometheus.process])
    assert {rule["name"]: rule["health"] for rule in rules} == {
        rule["name"]: "ok" for rule in rules
    }
    for path in DASHBOARDS:
        for expr in dashboard_queries(json.loads(path.read_text())):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            prometheus.query(expr)  # fails the test unless Prometheus accepts it


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
