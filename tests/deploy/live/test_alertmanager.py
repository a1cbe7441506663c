"""deploy/alertmanager/alertmanager.yml in a real Alertmanager, fed by a real Prometheus.

A component dead-letters a burst; Prometheus fires MeanderDeadLetterRate and sends it to Debian's
prometheus-alertmanager, which runs the example configuration with its receivers' URLs pointed
at a webhook receiver in this test. The receiver gets the alert from the route the example
gives it, in Alertmanager's webhook format; the body meander's notifier sends to a subscription
with format "alertmanager" has the same shape, so one receiver reads both.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from meander.consumers.notifier.alertmanager import payload
from meander.events import Alert

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "alertmanager" / "alertmanager.yml"
Received = queue.Queue[tuple[str, dict[str, Any]]]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A webhook receiver on loopback: its URL, and the (path, JSON body) of each POST."""
    received: Received = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reports what matters

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def example_for(receiver_url: str) -> dict[str, Any]:
    """The example with each receiver's URL pointed at ``receiver_url``/NAME, and the waits
    before a group's first notification shortened from seconds to one, for the test."""
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    for receiver in config["receivers"]:
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = f"{receiver_url}/{receiver['name']}"
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        if "group_wait" in route:
            route["group_wait"] = "1s"
    return config


@pytest.fixture
def start_alertmanager(
    tool: Callable[[str], str],
    tmp_path: Path,
    spawn: Callable[..., Any],
    free_port: Callable[[], int],
    answers: Callable[[str], bool],
    wait_for: Any,
) -> Callable[[dict[str, Any]], tuple[str, Any]]:
    """``start_alertmanager(config)``: host:port of a ready Alertmanager, and its process."""

    def start(config: dict[str, Any]) -> tuple[str, Any]:
        path = tmp_path / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        address = f"127.0.0.1:{free_port()}"
        argv = [
            tool("prometheus-alertmanager"),
            f"--config.file={path}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address={address}",
            "--cluster.listen-address=",  # alone: no gossip port to bind
        ]
        process = spawn("alertmanager", argv)
        ready = f"http://{address}/-/ready"
        wait_for(lambda: answers(ready), "Alertmanager to be ready", [process])
        return address, process

    return start


def test_an_alert_reaches_its_receiver_through_the_example(
    component: Any,
    start_prometheus: Callable[..., Any],
    start_alertmanager: Callable[[dict[str, Any]], tuple[str, Any]],
    receiver: tuple[str, Received],
    wait_for: Any,
) -> None:
    url, received = receiver
    address, manager = start_alertmanager(example_for(url))
    prometheus = start_prometheus(component.targets, alertmanager=address)
    processes = [*component.processes, prometheus.process, manager]
    component.dead_letter(1)
    wait_for(lambda: prometheus.query("meander_deadletters_total > 0"), "a scrape", processes)
    component.dead_letter(1000)

    def delivered() -> tuple[str, dict[str, Any]] | None:
        try:
            path, body = received.get_nowait()
        except queue.Empty:
            return None
        names = {alert["labels"]["alertname"] for alert in body["alerts"]}
        return (path, body) if "MeanderDeadLetterRate" in names else None

    path, body = wait_for(delivered, "the alert at the receiver", processes)
    assert path == "/operations" and body["receiver"] == "operations"
    assert body["version"] == "4" and body["status"] == "firing"
    [alert] = body["alerts"]
    assert alert["labels"] == {
        "alertname": "MeanderDeadLetterRate",
        "component": "predictor",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"] == "The predictor dead-letters messages"

    # What meander's notifier sends to a subscription with format "alertmanager".
    ours = payload(
        Alert(
            kind="concept_drift",
            stream="agrawal",
            severity="warning",
            statistic="adwin",
            value=1.0,
            detected_at=datetime.now(UTC),
        ),
        event_id="e1",
        receiver="models",
    )
    assert set(ours) == set(body)
    assert set(ours["alerts"][0]) == set(alert)
