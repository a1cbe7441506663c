"""Live alerts over Server-Sent Events, the feeds' filters, and an SSE reader for the tests."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from meander import topics
from meander.bus import Message
from meander.config import Settings
from meander.events import Alert, Prediction, decode, encode
from meander.runtime import Runtime
from meander.services.auth import new_key
from meander.services.routes import feeds
from meander.services.routes.feeds import AlertFilter
from meander.services.routes.predictions import PredictionFilter
from tests.conftest import MakeRuntime
from tests.services.conftest import Serve

OPEN = {"anonymous_scopes": ["publish", "read", "admin"]}
DEADLINE = 60.0  # generous: only a broken feed ever waits this long
TIMEOUT = httpx.Timeout(10.0, read=30.0)  # longer than the 15 s between pings


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    id: str | None
    data: Any


def sse_events(response: httpx.Response) -> Iterator[SseEvent]:
    """The events of an SSE response as they come (comments and pings left out)."""
    deadline = time.monotonic() + DEADLINE
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        assert time.monotonic() < deadline, f"the expected events did not come in {DEADLINE}s"
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if fields:
            data = orjson.loads(fields["data"]) if "data" in fields else None
            yield SseEvent(fields.get("event"), fields.get("id"), data)
        fields = {}


def take(events: Iterator[SseEvent], count: int, kind: str) -> list[SseEvent]:
    """The next ``count`` events called ``kind`` (the cursor-only blocks passed by)."""
    # range first: zip stops on it before asking the feed for one event too many.
    return [event for _, event in zip(range(count), _named(events, kind), strict=False)]


def _named(events: Iterator[SseEvent], kind: str) -> Iterator[SseEvent]:
    for event in events:
        if event.event == kind:
            yield event
        else:
            assert event.data is None, f"unexpected {event}"


def alert(stream: str, severity: str, kind: str = "data_drift") -> Alert:
    return Alert(
        kind=kind,  # type: ignore[arg-type]
        stream=stream,
        severity=severity,  # type: ignore[arg-type]
        statistic="psi",
        value=0.4,
    )


def publish_alerts(runtime: Runtime, *alerts: tuple[str, Alert]) -> None:
    records = [encode(topics.ALERTS, a, source="/test", event_id=i) for i, a in alerts]
    runtime.bus.publish(records)


def envelope_of(payload: Alert | Prediction, topic: str) -> Any:
    record = encode(topic, payload, source="/test", event_id="x1")
    return decode(Message(topic, 0, 0, record.key, record.value, record.headers, 0))


def test_the_alert_filter_keeps_a_stream_a_kind_and_a_least_severity() -> None:
    severe = AlertFilter(stream="fraud", severity="warning")
    assert severe.render(envelope_of(alert("fraud", "info"), topics.ALERTS)) is None
    assert severe.render(envelope_of(alert("churn", "critical"), topics.ALERTS)) is None
    kept = severe.render(envelope_of(alert("fraud", "critical"), topics.ALERTS))
    assert kept is not None
    assert (kept["id"], kept["stream"], kept["severity"]) == ("x1", "fraud", "critical")
    assert kept["time"].endswith("Z")
    drift = AlertFilter(kind="concept_drift")
    assert drift.render(envelope_of(alert("fraud", "critical"), topics.ALERTS)) is None
    assert drift.render(envelope_of(alert("s", "info", "concept_drift"), topics.ALERTS))


def test_the_prediction_filter_keeps_a_version_and_a_role() -> None:
    topic = topics.predictions("fraud")
    shadow = Prediction(
        event_id="e", model="fraud", version=3, role="challenger", prediction=1, latency_ms=0
    )
    assert PredictionFilter(model=3).render(envelope_of(shadow, topic)) is not None
    assert PredictionFilter(model=2).render(envelope_of(shadow, topic)) is None
    assert PredictionFilter(role="champion").render(envelope_of(shadow, topic)) is None
    assert PredictionFilter(role="challenger").render(envelope_of(shadow, topic)) is not None
    assert PredictionFilter().render(envelope_of(alert("fraud", "info"), topic)) is None


def test_alerts_arrive_live_filtered(make_runtime: MakeRuntime, serve: Serve) -> None:
    runtime = make_runtime(service=OPEN)
    base = serve(runtime.settings, runtime)
    url = f"{base}/v1/alerts/live?stream=fraud&severity=warning"
    with httpx.stream("GET", url, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        assert next(events) == SseEvent(None, "0:0", None)  # where a reconnect would resume
        publish_alerts(
            runtime,
            ("a1", alert("fraud", "info")),
            ("a2", alert("churn", "critical")),
            ("a3", alert("fraud", "warning")),
            ("a4", alert("fraud", "critical", "concept_drift")),
        )
        received = take(events, 2, "alert")
    assert [(e.id, e.data["id"]) for e in received] == [("0:3", "a3"), ("0:4", "a4")]
    assert received[1].data["kind"] == "concept_drift"
    assert received[1].data["severity"] == "critical"


def test_alerts_resume_after_the_last_event_id(make_runtime: MakeRuntime, serve: Serve) -> None:
    runtime = make_runtime(service=OPEN)
    base = serve(runtime.settings, runtime)
    publish_alerts(runtime, *[(f"a{n}", alert("fraud", "info")) for n in range(5)])
    headers = {"Last-Event-ID": "0:2"}
    with httpx.stream("GET", f"{base}/v1/alerts/live", headers=headers, timeout=TIMEOUT) as r:
        received = take(sse_events(r), 3, "alert")
    assert [e.data["id"] for e in received] == ["a2", "a3", "a4"]


@pytest.mark.parametrize(
    ("query", "headers", "status", "problem"),
    [
        ("", {"Last-Event-ID": "0:1;1:2"}, 400, "Last-Event-ID: '0:1;1:2' is not a cursor"),
        ("", {"Last-Event-ID": "1:0"}, 400, "names partition 1, but meander.alerts has 1"),
        ("?kind=nope", {}, 422, "'nope' is not an alert kind"),
        ("?severity=loud", {}, 422, "Input should be 'info', 'warning' or 'critical'"),
        ("?stream=a%20b", {}, 422, "String should match pattern"),
    ],
)
def test_a_malformed_request_is_refused_naming_the_problem(
    make_runtime: MakeRuntime,
    serve: Serve,
    query: str,
    headers: dict[str, str],
    status: int,
    problem: str,
) -> None:
    runtime = make_runtime(service=OPEN)
    base = serve(runtime.settings, runtime)
    response = httpx.get(f"{base}/v1/alerts/live{query}", headers=headers, timeout=TIMEOUT)
    assert response.status_code == status
    assert problem in response.text


def test_the_alerts_feed_needs_the_read_scope(make_runtime: MakeRuntime, serve: Serve) -> None:
    key, digest = new_key()
    runtime = make_runtime(
        service={"api_keys": [{"name": "p", "digest": digest, "scopes": ["publish"]}]}
    )
    base = serve(runtime.settings, runtime)
    assert httpx.get(f"{base}/v1/alerts/live", timeout=TIMEOUT).status_code == 401
    refused = httpx.get(f"{base}/v1/alerts/live", headers={"X-API-Key": key}, timeout=TIMEOUT)
    assert refused.status_code == 403


@pytest.mark.integration
def test_alerts_arrive_live_from_kafka(kafka_bootstrap: str, redis_url: str, serve: Serve) -> None:
    stream = f"alerts-{uuid.uuid4().hex[:8]}"  # the alerts topic is shared by every test
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, service=OPEN)
    with Runtime.open(settings) as runtime:
        base = serve(settings)
        url = f"{base}/v1/alerts/live?stream={stream}"
        with httpx.stream("GET", url, timeout=TIMEOUT) as response:
            assert response.status_code == 200
            events = sse_events(response)
            publish_alerts(runtime, ("k1", alert(stream, "info")), ("k2", alert(stream, "warning")))
            received = take(events, 2, "alert")
    assert [e.data["id"] for e in received] == ["k1", "k2"]
    assert all(e.data["stream"] == stream for e in received)


def test_a_client_that_reads_nothing_is_cut_with_a_warning_not_an_error(
    make_runtime: MakeRuntime,
    serve: Serve,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # uvicorn logged the send timeout's cut as "Exception in ASGI application", an ERROR with
    # the stack, once per slow client (seen with curl --limit-rate 1k).
    monkeypatch.setattr(feeds, "SEND_TIMEOUT_SECONDS", 1.0)
    runtime = make_runtime(service=OPEN)
    host, port = serve(runtime.settings, runtime).removeprefix("http://").split(":")
    uvicorn_errors = logging.getLogger("uvicorn.error")  # configured by the server: no propagation
    uvicorn_errors.addHandler(caplog.handler)
    wordy = alert("fraud", "critical").model_copy(update={"message": "x" * 4_000})
    try:
        with socket.create_connection((host, int(port))) as reader:
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.sendall(b"GET /v1/alerts/live HTTP/1.1\r\nHost: test\r\n\r\n")
            seen = b""
            while b"reading; events follow" not in seen:  # the feed has its start: stop reading
                seen += reader.recv(4096)
            publish_alerts(runtime, *((f"a{i}", wordy) for i in range(5_000)))  # 20 MB
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and not _from_uvicorn(caplog):
                time.sleep(0.1)
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
    [cut] = _from_uvicorn(caplog)
    assert (cut.levelname, cut.exc_info) == ("WARNING", None)
    assert cut.getMessage() == (
        "a live feed's client read nothing for 1 s: its connection was cut (it resumes from "
        "the cursor of the last event it read)"
    )


def _from_uvicorn(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "uvicorn.error" and r.levelno >= logging.WARNING]
