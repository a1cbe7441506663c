"""Fixtures of the checks against live servers: meander's components on the real Kafka and
Redis, Prometheus and Alertmanager, each a process of its own that is always stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import yaml

from meander import topics
from meander.bus import Bus, Record, connect_bus
from meander.config import Settings
from meander.producers.labels import Publisher
from meander.producers.sample import Sample
from meander.producers.synthetic import synthetic

DEADLINE = 120.0
PROMETHEUS_CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "prometheus.yml"
RULES = PROMETHEUS_CONFIG.parent / "rules" / "meander.yml"


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
    """meander's learner and predictor of one stream, running on the real Kafka and Redis as
    ``meander run NAME`` processes, each serving its metrics on a loopback port of its own."""

    stream: str
    processes: list[Process]
    targets: dict[str, str]  # Prometheus job -> host:port of its metrics
    bus: Bus
    samples: Iterator[Sample] = field(default_factory=lambda: synthetic("sea").samples())
    publisher: Publisher | None = None

    @property
    def target(self) -> str:
        """Where the predictor serves its metrics."""
        return self.targets["meander-predictor"]

    def dead_letter(self, count: int) -> None:
        """Publish ``count`` messages that are not CloudEvents to the stream's events topic,
        which the predictor sends to the dead-letter topic."""
        self.bus.publish([Record(topics.events(self.stream), b"not a CloudEvent")] * count)

    def publish(self, count: int) -> None:
        """Publish the next ``count`` events of the stream's synthetic source, and their
        labels."""
        self.publisher = self.publisher or Publisher(self.stream)
        events, feedback = self.publisher.push(islice(self.samples, count))
        self.bus.publish(events)
        self.bus.publish(feedback)


@pytest.fixture
def component(
    spawn: Callable[..., Process], kafka_bootstrap: str, redis_url: str
) -> Iterator[Component]:
    """A :class:`Component` whose metrics answer, on a stream no other test uses."""
    stream = synthetic("sea").stream_config(f"obs{uuid.uuid4().hex[:10]}")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, streams=[stream])
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith("MEANDER_")}
    environment = inherited | {
        "MEANDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MEANDER_REDIS_URL": redis_url,
        "MEANDER_MODEL_SIGNING_KEY": "deploy-tests-signing-key-0123456789",
        "MEANDER_STREAMS": json.dumps([stream.model_dump(mode="json")]),
        "PYTHONUNBUFFERED": "1",
    }
    bus = connect_bus(settings)
    try:
        bus.create_topics(topics.layout(settings.streams))
        processes, targets = [], {}
        for name in ("learner", "predictor"):  # the learner registers the first champion
            port = free_port()
            argv = [str(Path(sys.executable).with_name("meander")), "run", name]
            env = environment | {"MEANDER_METRICS_PORT": str(port)}
            processes.append(spawn(name, argv, env=env))
            targets[f"meander-{name}"] = f"127.0.0.1:{port}"
        for url in (f"http://{target}/metrics" for target in targets.values()):
            wait_for(partial(answers, url), f"metrics at {url}", processes)
        yield Component(stream.name, processes, targets, bus)
    finally:
        bus.close()
