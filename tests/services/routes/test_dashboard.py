"""The dashboard page and the overview it polls, on the embedded bus and store.

The loop learns a few hundred SEA events for real (registry, learner metrics, topic offsets);
alerts and lifecycle events go through the notifier into the Redis logs the overview reads.
The last test reads the counters from real Kafka and Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meander import topics
from meander.config import Settings, StreamConfig
from meander.consumers.loop import Loop
from meander.consumers.notifier.notifier import Notifier
from meander.events import Alert, ModelEvent, encode
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_model
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.auth import new_key
from tests.conftest import MakeRuntime, MakeStream
from tests.services.conftest import problem_of

EVENTS = 600
AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class World:
    runtime: Runtime
    stream: StreamConfig
    client: TestClient

    def announce(self, *payloads: tuple[Alert | ModelEvent, datetime]) -> None:
        """Publish alerts and lifecycle events, and let the notifier log them in Redis."""
        records = [
            encode(topics.ALERTS if isinstance(p, Alert) else topics.MODELS, p, source="/t", time=t)
            for p, t in payloads
        ]
        self.runtime.bus.publish(records)
        notifier = Notifier(self.runtime)
        try:
            while notifier.step(0.0):
                pass
        finally:
            notifier.close()

    def overview(self, **headers: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/streams/{self.stream.name}/overview", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def world(make_runtime: MakeRuntime, make_stream: MakeStream) -> Iterator[World]:
    stream = make_stream("sea", learning={"publish_every": 100})
    runtime = make_runtime(stream, service={"anonymous_scopes": ["read"]})
    loop = Loop(runtime, stream, monitor=False)
    publisher, samples = Publisher(stream.name), list(synthetic("sea", seed=7).samples(EVENTS))
    for start in range(0, EVENTS, 100):  # labels in between, so the model has something to serve
        loop.feed(*publisher.push(samples[start : start + 100]))
    loop.close()
    yield World(runtime, stream, TestClient(create_app(runtime.settings, runtime=runtime)))


def test_the_page_loads_without_a_key_and_only_from_itself(world: World) -> None:
    page = world.client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for asset in ("dashboard.js", "chart.js", "panels.js", "dashboard.css"):
        assert world.client.get(f"/dashboard/{asset}").status_code == 200
    assert world.client.get("/dashboard/overview.py").status_code == 404


def test_counters_metrics_and_lineage(world: World) -> None:
    registry = Registry(world.runtime.store, "sea", signer_for(world.runtime.settings))
    cause = {"reason": "concept drift in the error of champion v1"}
    model = build_model("tree.HoeffdingTreeClassifier")
    challenger = registry.register(
        model, spec="tree.HoeffdingTreeClassifier", parent=1, cause=cause
    )
    registry.add_challenger(challenger.version, reason="warm start")

    view = world.overview()

    assert view["stream"] == "sea" and view["metric"] == "accuracy" and view["champion"] == 1
    throughput = view["throughput"]
    assert (throughput["events"], throughput["labels"]) == (EVENTS, EVENTS)
    assert 0 < throughput["learned"] <= EVENTS  # as of the learner's last shared metrics
    (champion,) = view["versions"]  # the challenger has no metric until it is served
    assert champion["version"] == 1 and champion["status"] == "champion"
    assert 0.5 < champion["rolling"] <= 1.0 and 0 < champion["labels"] <= EVENTS
    assert view["served"]["rolling"] == pytest.approx(champion["rolling"])
    assert [(v["version"], v["parent"], v["status"]) for v in view["lineage"]] == [
        (2, 1, "challenger"),
        (1, None, "champion"),
    ]
    assert view["lineage"][0]["cause"] == cause["reason"]
    assert view["markers"] == [] and view["alerts"] == []


def test_markers_and_alerts_come_from_the_logs_of_this_stream(world: World) -> None:
    def alert(kind: Any, stream: str = "sea") -> Alert:
        return Alert(
            kind=kind,
            stream=stream,
            severity="critical",
            statistic="adwin",
            value=0.3,
            version=1,
            message=f"{kind} seen",
        )

    promoted = ModelEvent(
        action="promoted", stream="sea", version=2, previous_version=1, reason="beat the champion"
    )
    trained = ModelEvent(action="challenger_trained", stream="sea", version=2)
    world.announce(
        (alert("concept_drift"), AT),
        (alert("data_drift"), AT + timedelta(seconds=1)),
        (trained, AT + timedelta(seconds=2)),
        (promoted, AT + timedelta(seconds=3)),
        (alert("concept_drift", stream="other"), AT + timedelta(seconds=4)),
    )

    view = world.overview()

    # The learner announced its first champion as the loop started, long after AT.
    assert [(m["kind"], m["at_ms"], m["version"]) for m in view["markers"][:2]] == [
        ("concept_drift", ms(AT), 1),
        ("promoted", ms(AT + timedelta(seconds=3)), 2),
    ]
    assert [(m["kind"], m["version"]) for m in view["markers"][2:]] == [("promoted", 1)]
    assert view["markers"][1]["text"] == "v2 promoted: beat the champion"
    assert [(a["kind"], a["subject"], a["message"]) for a in view["alerts"]] == [
        ("data_drift", "v1", "data_drift seen"),  # newest first; the other stream's is not here
        ("concept_drift", "v1", "concept_drift seen"),
    ]


def test_only_the_last_twenty_alerts(world: World) -> None:
    drift = Alert(kind="data_drift", stream="sea", severity="warning", statistic="psi", value=0.3)
    world.announce(*((drift, AT + timedelta(seconds=s)) for s in range(25)))
    alerts = world.overview()["alerts"]
    assert len(alerts) == 20
    assert alerts[0]["at_ms"] == ms(AT + timedelta(seconds=24))


def test_the_overview_needs_the_read_scope(
    make_runtime: MakeRuntime, make_stream: MakeStream
) -> None:
    reader, reader_digest = new_key()
    publisher, publisher_digest = new_key()
    keys = [
        {"name": "reader", "digest": reader_digest, "scopes": ["read"]},
        {"name": "publisher", "digest": publisher_digest, "scopes": ["publish"]},
    ]
    runtime = make_runtime(make_stream("sea"), service={"api_keys": keys})
    client = TestClient(create_app(runtime.settings, runtime=runtime))
    path = "/v1/streams/sea/overview"
    assert client.get(path).status_code == 401
    assert client.get("/v1/streams/nope/overview").status_code == 401  # no probing for names
    assert client.get(path, headers={"X-API-Key": publisher}).status_code == 403
    answer = client.get(path, headers={"X-API-Key": reader})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    unknown = client.get("/v1/streams/nope/overview", headers={"X-API-Key": reader})
    assert unknown.status_code == 404 and "sea" in problem_of(unknown)["msg"]


def test_regression_streams_show_the_mae(
    make_runtime: MakeRuntime, make_stream: MakeStream
) -> None:
    stream = make_stream("friedman", source="friedman", model="linear_model.LinearRegression")
    runtime = make_runtime(stream, service={"anonymous_scopes": ["read"]})
    client = TestClient(create_app(runtime.settings, runtime=runtime))
    view = client.get("/v1/streams/friedman/overview").json()
    assert (view["task"], view["metric"], view["versions"]) == ("regression", "mae", [])


@pytest.mark.integration
def test_the_overview_on_kafka_and_redis(kafka_bootstrap: str, redis_url: str) -> None:
    stream = synthetic("sea").stream_config(f"dash{uuid.uuid4().hex[:8]}")
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key="a dashboard test key, long enough to sign",
        streams=[stream],
        service={"anonymous_scopes": ["read"]},
    )
    with Runtime.open(settings) as runtime:
        events, feedback = Publisher(stream.name).push(list(synthetic("sea").samples(30)))
        runtime.bus.publish(events + feedback[:10])
        with TestClient(create_app(settings, runtime=runtime)) as client:
            view = client.get(f"/v1/streams/{stream.name}/overview").json()
    assert view["throughput"] == {"events": 30, "labels": 10, "learned": 0}
    assert (view["versions"], view["alerts"], view["lineage"]) == ([], [], [])
