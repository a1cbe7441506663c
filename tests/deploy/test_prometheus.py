"""A real Prometheus server against a running meander process.

Prometheus (Debian's /usr/bin/prometheus) runs on a free loopback port with a configuration
made from deploy/prometheus/prometheus.yml: the same jobs, aimed at the processes this test
started, scraped every second, and the rules of deploy/prometheus/rules/meander.yml. The test
waits for a scrape, finds our series through the HTTP API, provokes a dead-letter burst and
waits for MeanderDeadLetterRate to fire. Every wait is for an event, with a generous deadline.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "meander.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
DEADLINE = 120.0
# What Grafana puts in place of the dashboard's variables before it sends a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$stream": ".*",
    "$metric": "accuracy",
}

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
    """A process this test started, with its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], what: str, processes: list[Process]) -> Any:
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


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Starts processes; each is stopped (SIGTERM, then SIGKILL) and reaped at teardown."""
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
) -> Callable[[dict[str, str]], Prometheus]:
    """``start_prometheus({job: "host:port"})``: a Prometheus scraping those jobs every second
    with meander's rules, once it is ready."""

    def start(jobs: dict[str, str]) -> Prometheus:
        real = yaml.safe_load(CONFIG.read_text())
        config = {
            "global": real["global"] | {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(fast_rules(tmp_path / "rules.yml"))],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in jobs.items()
            ],
        }
        unknown = set(jobs) - {job["job_name"] for job in real["scrape_configs"]}
        assert not unknown, f"jobs {unknown} are not in {CONFIG.name}"
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        address = f"127.0.0.1:{free_port()}"
        process = spawn(
            "prometheus",
            [
                tool("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address={address}",
            ],
        )
        server = Prometheus(f"http://{address}", process)
        wait_for(lambda: answers(f"{server.url}/-/ready"), "Prometheus to be ready", [process])
        return server

    return start


@pytest.fixture
def component(spawn: Callable[..., Process]) -> tuple[Process, str]:
    """A running process serving meander's metrics, and its target (host:port)."""
    port = free_port()
    process = spawn("component", [sys.executable, "-c", STAND_IN, str(port)], stdin=subprocess.PIPE)
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/metrics"), "the metrics", [process])
    return process, f"127.0.0.1:{port}"


def dead_letter(process: Process, count: int) -> None:
    assert process.process.stdin is not None
    process.process.stdin.write(f"{count}\n".encode())
    process.process.stdin.flush()


def test_component_metrics_parse_and_are_scraped(
    component: tuple[Process, str], start_prometheus: Callable[[dict[str, str]], Prometheus]
) -> None:
    process, target = component
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as answer:
        families = {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
    assert families["meander_deadletters"].type == "counter"

    prometheus = start_prometheus({"meander-predictor": target})
    processes = [process, prometheus.process]
    wait_for(lambda: prometheus.query('up{job="meander-predictor"} == 1'), "a scrape", processes)
    dead_letter(process, 1)
    [series] = wait_for(
        lambda: prometheus.query("meander_deadletters_total > 0"), "our series", processes
    )
    assert series["metric"] | {"instance": target} == {
        "__name__": "meander_deadletters_total",
        "job": "meander-predictor",
        "instance": target,
        "component": "predictor",
        "reason": "undecodable",
    }


def test_dead_letter_burst_fires_the_alert(
    component: tuple[Process, str], start_prometheus: Callable[[dict[str, str]], Prometheus]
) -> None:
    process, target = component
    prometheus = start_prometheus({"meander-predictor": target})
    processes = [process, prometheus.process]
    # A first dead letter, seen before the burst, so that rate() measures the burst from it
    # (Prometheus takes no increase from a series' first sample).
    dead_letter(process, 1)
    wait_for(lambda: prometheus.query("meander_deadletters_total > 0"), "a scrape", processes)
    assert not prometheus.alerts("MeanderDeadLetterRate", "firing")
    # rate() over 5 minutes: 1,000 dead letters make 3.3 a second, over the limit of 1.
    dead_letter(process, 1000)
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
    component: tuple[Process, str], start_prometheus: Callable[[dict[str, str]], Prometheus]
) -> None:
    process, target = component
    prometheus = start_prometheus({"meander-predictor": target})
    processes = [process, prometheus.process]

    def evaluated() -> list[dict[str, Any]]:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return (
            rules
            if all(rule.get("lastEvaluation", "0001").startswith("2") for rule in rules)
            else []
        )

    rules = wait_for(evaluated, "every rule to be evaluated", processes)
    assert {rule["name"]: rule["health"] for rule in rules} == {
        rule["name"]: "ok" for rule in rules
    }
    for path in DASHBOARDS:
        for expr in dashboard_queries(json.loads(path.read_text())):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            prometheus.query(expr)  # raises unless Prometheus accepts it


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
