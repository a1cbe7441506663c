"""Fixtures of the deploy/ checks: the monitoring tools, the metrics contract, PromQL names,
and live servers (a component serving metrics, Prometheus) that are always stopped.

The tools are Debian's: ``promtool`` and ``prometheus`` from the prometheus package, ``amtool``
from prometheus-alertmanager (``make system-deps`` installs both). A missing tool skips its
tests on a laptop and fails them under CI=true, as the Kafka and Redis fixtures do.

The contract (the metric names of issue 5, /work/helpers/metrics_contract.md) is written out
once here. Rules and dashboards are checked against it, and it is checked against the names
meander's code registers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    "meander_http_requests_total": ("counter", ("method", "route", "status")),
    "meander_http_request_duration_seconds": ("histogram", ("method", "route")),
}
CONTRACT = {name: kind for name, (kind, _labels) in CONTRACT_LABELS.items()}
# Series Prometheus makes itself: whether a target answered, and the state of its alerts.
BUILT_IN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
SUFFIXES = {"counter": ("", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


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


# Live servers ------------------------------------------------------------------------------

DEADLINE = 120.0
PROMETHEUS_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "prometheus.yml"
RULES = PROMETHEUS_CONFIG.parent / "rules" / "meander.yml"

# Until meander/telemetry.py serves the real registry on `metrics_port`, a process that exposes
# the contract's dead-letter counter the way a component will: prometheus_client's HTTP server,
# counting one dead letter per line of input.
STAND_IN = """
import sys
from prometheus_client import Counter, start_http_server
dead = Counter("meander_deadletters", "dead letters", ["component", "reason"])
start_http_server(int(sys.argv[1]), addr="127.0.0.1")
for line in sys.stdin:
    dead.labels("predictor", "undecodable").inc(int(line))
"""


@dataclass
class Process:
    """A process a test started, with its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


WaitFor = Callable[[Callable[[], Any], str, Sequence[Process]], Any]


def wait_for(condition: Callable[[], Any], what: str, processes: Sequence[Process]) -> Any:
    """Polls ``condition`` until it is true; fails naming ``what``, with the processes' output."""
    deadline = time.monotonic() + DEADLINE
    while not (value := condition()):
        dead = [p for p in processes if p.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name} ---\n{p.output()}" for p in processes)
            cause = f"{dead[0].name} exited" if dead else f"not within {DEADLINE:g} s"
            raise AssertionError(f"waiting for {what}: {cause}\n{logs}")
        time.sleep(0.2)
    return value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class Prometheus:
    """The HTTP API of a running Prometheus."""

    def __init__(self, url: str, process: Process) -> None:
        self.url, self.process = url, process

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path} {params}: {error.code} {error.read()!r}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def alerts(self, name: str, state: str) -> list[dict[str, Any]]:
        alerts = self.get("/api/v1/alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == state]


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> WaitFor:
    """:func:`wait_for`, for tests."""
    return wait_for


@pytest.fixture(name="answers")
def answers_fixture() -> Callable[[str], bool]:
    """:func:`answers`, for tests: whether a URL answers 200."""
    return answers


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """:func:`free_port`, for tests: a free TCP port on loopback."""
    return free_port


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """``spawn(name, argv, **popen)``: starts a process; each is stopped (SIGTERM, then
    SIGKILL) and reaped at teardown."""
    started: list[Process] = []

    def start(name: str, argv: list[str], **options: Any) -> Process:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, **options)
        started.append(Process(name, process, log))
        return started[-1]

    yield start
    for child in started:
        if child.process.stdin is not None:
            child.process.stdin.close()
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(30)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(30)


def fast_rules(path: Path) -> Path:
    """A copy of the real rules with every `for:` shortened to 1 s, so that a test sees an
    alert fire in seconds instead of minutes; the expressions are the real ones."""
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    path.write_text(yaml.safe_dump(groups))
    return path


@pytest.fixture
def start_prometheus(
    tool: Callable[[str], str], tmp_path: Path, spawn: Callable[..., Process]
) -> Callable[..., Prometheus]:
    """``start_prometheus({job: "host:port"}, alertmanager=None)``: a ready Prometheus that
    scrapes those jobs of deploy/prometheus/prometheus.yml every second, evaluates meander's
    rules (with shortened `for:`) and sends alerts to ``alertmanager`` (host:port) if given."""

    def start(jobs: dict[str, str], alertmanager: str | None = None) -> Prometheus:
        real = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        unknown = set(jobs) - {job["job_name"] for job in real["scrape_configs"]}
        assert not unknown, f"jobs {unknown} are not in {PROMETHEUS_CONFIG.name}"
        config: dict[str, Any] = {
            "global": real["global"] | {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(fast_rules(tmp_path / "rules.yml"))],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in jobs.items()
            ],
        }
        if alertmanager is not None:
            managers = [{"static_configs": [{"targets": [alertmanager]}]}]
            config["alerting"] = {"alertmanagers": managers}
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        address = f"127.0.0.1:{free_port()}"
        process = spawn(
            "prometheus",
            [
                tool("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address={address}",
            ],
        )
        server = Prometheus(f"http://{address}", process)
        wait_for(lambda: answers(f"{server.url}/-/ready"), "Prometheus to be ready", [process])
        return server

    return start


@dataclass
class Component:
    """A running process that serves meander's metrics, and how to make it dead-letter."""

    process: Process
    target: str  # host:port of its metrics
    dead_letter: Callable[[int], None]


@pytest.fixture
def component(spawn: Callable[..., Process]) -> Component:
    """A component serving its metrics on a free loopback port."""
    port = free_port()
    argv = [sys.executable, "-c", STAND_IN, str(port)]
    process = spawn("component", argv, stdin=subprocess.PIPE)
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/metrics"), "the metrics", [process])

    def dead_letter(count: int) -> None:
        assert process.process.stdin is not None
        process.process.stdin.write(f"{count}\n".encode())
        process.process.stdin.flush()

    return Component(process, f"127.0.0.1:{port}", dead_letter)
