"""The alerts API: history, subscriptions, delivery records; at the end, the whole path on real
Kafka and Redis to a real webhook receiver on loopback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import httpx2 as httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from meander import topics
from meander.bus import MemoryBroker, MemoryBus
from meander.component import drain
from meander.config import Settings, StreamConfig
from meander.consumers.notifier.notifier import Notifier
from meander.consumers.notifier.subscriptions import Subscriptions
from meander.consumers.notifier.webhooks import verify
from meander.events import Alert, ModelEvent, Payload, encode
from meander.keys import log as log_key
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.auth import new_key
from meander.store import memory_store
from tests.conftest import HookServer
from tests.services.conftest import problem_of

BOUND = 60.0  # seconds any wait may take before the test fails; never reached when it passes
OPEN = ["publish", "read", "admin"]
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def drift(
    stream: str = "fraud", kind: str = "data_drift", severity: str = "warning", minutes: int = 0
) -> Alert:
    return Alert.model_validate(
        {
            "kind": kind,
            "stream": stream,
            "severity": severity,
            "statistic": "psi",
            "value": 0.3,
            "detected_at": T0 + timedelta(minutes=minutes),
        }
    )


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    settings = Settings(service={"anonymous_scopes": OPEN})
    opened = Runtime(settings, MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
    opened.bus.create_topics(topics.layout([]))
    yield opened
    opened.close()


FRAUD = StreamConfig(name="fraud", task="binary", features={"amount": "numeric"})


def client_for(runtime: Runtime, **service: Any) -> TestClient:
    settings = Settings(service={"anonymous_scopes": OPEN, **service}, streams=[FRAUD])
    return TestClient(create_app(settings, runtime=runtime))


def announce(runtime: Runtime, *payloads: Payload) -> None:
    """Publish as the learner and monitor do, and let a notifier log them."""
    records = [
        encode(topics.ALERTS if isinstance(p, Alert) else topics.MODELS, p, source="/test")
        for p in payloads
    ]
    runtime.bus.publish(records)
    notifier = Notifier(runtime)
    drain([notifier])
    notifier.close()


def kinds_and_streams(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(a["kind"], a["stream"]) for a in response.json()["alerts"]]


def test_the_history_is_newest_first_and_filtered(runtime: Runtime) -> None:
    announce(
        runtime,
        drift("fraud", "data_drift", "info", minutes=0),
        drift("churn", "concept_drift", "critical", minutes=10),
        ModelEvent(action="promoted", stream="fraud"),
        drift("fraud", "concept_drift", "warning", minutes=20),
    )
    client = client_for(runtime)

    def history(**query: Any) -> list[tuple[str, str]]:
        return kinds_and_streams(client.get("/v1/alerts", params=query))

    assert history() == [
        ("concept_drift", "fraud"),
        ("concept_drift", "churn"),
        ("data_drift", "fraud"),
    ]
    assert history(stream="fraud") == [("concept_drift", "fraud"), ("data_drift", "fraud")]
    assert history(kind="concept_drift", limit=1) == [("concept_drift", "fraud")]
    assert history(severity="warning") == [("concept_drift", "fraud"), ("concept_drift", "churn")]
    assert history(severity="critical") == [("concept_drift", "churn")]
    window = {"since": "2025-05-01T12:05:00Z", "until": "2025-05-01T12:15:00+00:00"}
    assert history(**window) == [("concept_drift", "churn")]
    assert history(since="2025-05-01T12:20:00Z") == [("concept_drift", "fraud")]
    (first,) = client.get("/v1/alerts", params={"until": "2025-05-01T12:00:00Z"}).json()["alerts"]
    assert (first["statistic"], first["detected_at"]) == ("psi", "2025-05-01T12:00:00Z")
    assert first["id"] and first["time"]


def test_the_history_pages_through_more_than_one_read_and_skips_unreadable_entries(
    runtime: Runtime,
) -> None:
    announce(runtime, *(drift(f"s{n}", minutes=n) for n in range(520)))
    runtime.store.xadd(log_key("alerts"), {"id": "x", "kind": "data_drift", "event": b"{"})
    client = client_for(runtime)

    alerts = client.get("/v1/alerts", params={"stream": "s0"}).json()["alerts"]
    every = client.get("/v1/alerts", params={"limit": 1000}).json()["alerts"]

    assert [a["stream"] for a in alerts] == ["s0"]
    assert [a["stream"] for a in every] == [f"s{n}" for n in reversed(range(520))]


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": 1001}, "limit", "less than or equal to 1000"),
        ({"kind": "drift"}, "kind", "'drift' is not an alert kind"),
        ({"severity": "fatal"}, "severity", "Input should be 'info', 'warning' or 'critical'"),
        ({"since": "yesterday"}, "since", "Input should be a valid datetime"),
        ({"until": "2025-01-01T00:00:00"}, "until", "Input should have timezone info"),
        ({"stream": "a b"}, "stream", "String should match pattern"),
        (
            {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
            "until",
            "must not be before since",
        ),
    ],
)
def test_bad_history_queries_get_422_naming_the_field(
    runtime: Runtime, query: dict[str, Any], field: str, problem: str
) -> None:
    response = client_for(runtime).get("/v1/alerts", params=query)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert problem in error["msg"]


def test_a_subscription_lives_through_its_api_and_its_secret_is_shown_once(
    runtime: Runtime,
) -> None:
    client = client_for(runtime, allow_private_webhooks=True)
    body = {
        "url": "http://127.0.0.1:9/hook",
        "filters": {"streams": ["fraud"]},
        "description": "on call",
    }

    created = client.post("/v1/subscriptions", json=body)
    assert created.status_code == 201, created.text
    made = created.json()
    secret, sid = made.pop("secret"), made["id"]
    assert secret.startswith("whsec_")
    assert client.get(f"/v1/subscriptions/{sid}").json() == made
    assert client.get("/v1/subscriptions").json() == {"subscriptions": [made]}

    changed = client.patch(f"/v1/subscriptions/{sid}", json={"format": "alertmanager"}).json()
    assert (changed["format"], changed["secret"], changed["description"]) == (
        "alertmanager",
        None,
        "on call",
    )
    rotated = client.patch(f"/v1/subscriptions/{sid}", json={"rotate_secret": True}).json()
    assert rotated["secret"] not in (None, secret)
    shown = [client.get(f"/v1/subscriptions/{sid}").text, client.get("/v1/subscriptions").text]
    assert not any(secret in text or rotated["secret"] in text for text in shown)

    assert client.get(f"/v1/subscriptions/{sid}/deliveries").json() == {"deliveries": []}
    assert client.delete(f"/v1/subscriptions/{sid}").status_code == 204
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries")]:
        response = client.request(method, f"/v1/subscriptions/{sid}{path}", json={})
        assert response.status_code == 404, (method, path)
        assert problem_of(response) == {
            "loc": ["path", "subscription"],
            "msg": f"no subscription {sid!r}; list them to see ids",
            "type": "not_found",
        }


def test_a_password_in_the_url_is_masked_wherever_it_is_shown(runtime: Runtime) -> None:
    client = client_for(runtime, allow_private_webhooks=True)
    made = client.post("/v1/subscriptions", json={"url": "http://bot:pa55@127.0.0.1:9/in"}).json()
    shown = [
        made["url"],
        client.get(f"/v1/subscriptions/{made['id']}").json()["url"],
        client.get("/v1/subscriptions").json()["subscriptions"][0]["url"],
        client.patch(f"/v1/subscriptions/{made['id']}", json={"description": "x"}).json()["url"],
    ]
    assert shown == ["http://bot:***@127.0.0.1:9/in"] * 4
    # Deliveries still use the real credentials: the store keeps the URL as given.
    assert Subscriptions(runtime.store).get(made["id"]).url == "http://bot:pa55@127.0.0.1:9/in"


def test_a_given_secret_is_used(runtime: Runtime) -> None:
    client = client_for(runtime, allow_private_webhooks=True)
    url = "http://127.0.0.1:9/hook"
    made = client.post("/v1/subscriptions", json={"url": url, "secret": "x" * 32}).json()
    assert made["secret"] == "x" * 32
    short = client.post("/v1/subscriptions", json={"url": url, "secret": "short"})
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "secret"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8080/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://10.0.0.8/hook", "a private address"),
        ("http://[::1]/hook", "a loopback address"),
        ("http://0.0.0.0/hook", "an unspecified address"),
        ("gopher://hooks.example/", "the scheme must be http or https"),
    ],
)
def test_refused_targets_get_422_naming_the_url(runtime: Runtime, url: str, problem: str) -> None:
    client = client_for(runtime)
    response = client.post("/v1/subscriptions", json={"url": url})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "url"] and problem in error["msg"]
    assert client.get("/v1/subscriptions").json() == {"subscriptions": []}


def test_an_update_to_a_refused_target_is_refused_and_changes_nothing(runtime: Runtime) -> None:
    client = client_for(runtime)
    made, _ = _subscribe_directly(runtime, "http://93.184.215.14/hook")
    response = client.patch(f"/v1/subscriptions/{made}", json={"url": "http://10.1.1.1/"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "url"]
    assert client.get(f"/v1/subscriptions/{made}").json()["url"] == "http://93.184.215.14/hook"


def test_a_subscription_to_a_stream_that_is_not_configured_is_refused(runtime: Runtime) -> None:
    # It was made (201), and no event ever passed its filter.
    client = client_for(runtime)
    misspelt = {"url": "http://93.184.215.14/", "filters": {"streams": ["fraud", "fruad"]}}

    response = client.post("/v1/subscriptions", json=misspelt)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "filters", "streams", 1]
    assert error["msg"] == "stream 'fruad' is not configured (configured: fraud)"
    made = client.post("/v1/subscriptions", json={"url": "http://93.184.215.14/"}).json()
    changed = client.patch(f"/v1/subscriptions/{made['id']}", json={"filters": {"streams": ["x"]}})
    assert changed.status_code == 422
    assert client.get(f"/v1/subscriptions/{made['id']}").json()["filters"]["streams"] == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"url": "http://93.184.215.14/", "filters": {"kinds": ["drift"]}},
            ["body", "filters", "kinds", 0],
        ),
        ({"url": "http://93.184.215.14/", "format": "slack"}, ["body", "format"]),
        ({"url": "http://93.184.215.14/", "colour": "red"}, ["body", "colour"]),
        ({"filters": {}}, ["body", "url"]),
    ],
)
def test_malformed_subscriptions_get_422_naming_the_field(
    runtime: Runtime, body: dict[str, Any], loc: list[Any]
) -> None:
    response = client_for(runtime).post("/v1/subscriptions", json=body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_subscriptions_need_the_admin_scope_and_history_the_read_scope(runtime: Runtime) -> None:
    key, digest = new_key()
    settings = Settings(
        service={"api_keys": [{"name": "reader", "digest": digest, "scopes": ["read"]}]}
    )
    client = TestClient(create_app(settings, runtime=runtime))
    reader = {"Authorization": f"Bearer {key}"}

    assert client.get("/v1/alerts", headers=reader).status_code == 200
    assert client.get("/v1/alerts").status_code == 401
    assert client.get("/v1/subscriptions", headers=reader).status_code == 403
    body = {"url": "http://93.184.215.14/"}
    assert client.post("/v1/subscriptions", json=body, headers=reader).status_code == 403


def test_the_schema_documents_the_routes_with_examples(runtime: Runtime) -> None:
    schema = client_for(runtime).get("/openapi.json").json()
    paths = schema["paths"]
    assert {"get"} <= set(paths["/v1/alerts"])
    assert {"get", "post"} <= set(paths["/v1/subscriptions"])
    assert {"get", "patch", "delete"} <= set(paths["/v1/subscriptions/{subscription}"])
    assert "get" in paths["/v1/subscriptions/{subscription}/deliveries"]
    components = schema["components"]["schemas"]
    assert components["SubscriptionCreate"]["examples"][0]["format"] == "alertmanager"
    assert "secret" not in components["Subscription"]["properties"]
    assert all(op.get("summary") for path in paths.values() for op in path.values())


def _subscribe_directly(runtime: Runtime, url: str) -> tuple[str, str]:
    from meander.consumers.notifier.subscriptions import Subscriptions

    made, secret = Subscriptions(runtime.store).create(url)
    return made.id, secret


# --- on real Kafka and Redis, through a real server, to a real receiver on loopback ---------


def live_settings(kafka_bootstrap: str, redis_url: str, **service: Any) -> Settings:
    """Settings of a service with its notifier, and a stream of its own (the first) for the
    test's alerts, so that no other test's alerts reach its subscriptions."""
    stream = StreamConfig(
        name=f"alerts{uuid.uuid4().hex[:8]}", task="binary", features={"amount": "numeric"}
    )
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        streams=[stream],
        # A group of its own: no notifier of an earlier test holds the alerts' partition.
        notifier={"retries": 2, "timeout_seconds": 5.0, "group": f"test-{uuid.uuid4().hex}"},
        service={
            "allow_private_webhooks": True,  # the receiver listens on loopback
            "anonymous_scopes": OPEN,
            "components": ["notifier"],
            **service,
        },
    )


def publish_as_the_learner(settings: Settings, alert: Alert) -> str:
    """Publish ``alert`` on meander.alerts as the learner does; returns its event id."""
    record = encode(topics.ALERTS, alert, source="/meander/learner", subject=alert.stream)
    with Runtime.open(settings) as runtime:
        runtime.bus.publish([record], timeout=30)
    return dict(record.headers)["ce_id"].decode()


def eventually(probe: Callable[[], Any], what: str) -> Any:
    """Ask ``probe`` until it answers something other than None (an HTTP API has no push)."""
    deadline = time.monotonic() + BOUND
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"{what} did not happen within {BOUND:g} s"
        time.sleep(0.1)
    return found


def concept_drift(stream: str) -> Alert:
    return Alert(
        kind="concept_drift",
        stream=stream,
        severity="critical",
        statistic="adwin",
        value=0.41,
        model=stream,
        version=2,
        message="ADWIN found a change in the error of champion v2",
    )


@pytest.fixture
def live(
    kafka_bootstrap: str, redis_url: str, serve: Callable[..., str]
) -> Iterator[tuple[Settings, httpx.Client]]:
    """A running service with its notifier, and a client of it that deletes what it created."""
    settings = live_settings(kafka_bootstrap, redis_url)
    with httpx.Client(base_url=serve(settings), timeout=30) as client:
        yield settings, client
        for made in client.get("/v1/subscriptions").json()["subscriptions"]:
            if made["description"] == "test_alerts":
                client.delete(f"/v1/subscriptions/{made['id']}")


def subscribe(client: httpx.Client, url: str, stream: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "filters": {"streams": [stream]}, "description": "test_alerts", **fields}
    response = client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def records(client: httpx.Client, made: dict[str, Any], status: str) -> Any:
    path = f"/v1/subscriptions/{made['id']}/deliveries"
    found = client.get(path, params={"status": status}).json()["deliveries"]
    return found or None


@pytest.mark.integration
def test_a_drift_alert_reaches_the_subscribed_webhook_with_a_valid_signature(
    live: tuple[Settings, httpx.Client], hook_server: Callable[..., HookServer]
) -> None:
    settings, client = live
    hook, stream = hook_server(), settings.streams[0].name
    made = subscribe(client, hook.url(), stream)

    event_id = publish_as_the_learner(settings, concept_drift(stream))

    (request,) = hook.wait_for(1)
    headers = request.headers
    assert verify(
        made["secret"].encode(),
        request.body,
        headers["x-meander-timestamp"],
        headers["x-meander-signature"],
    )
    assert headers["x-meander-event-id"] == event_id
    event = orjson.loads(request.body)
    assert (event["id"], event["source"], event["subject"]) == (
        event_id,
        "/meander/learner",
        stream,
    )
    assert (event["data"]["kind"], event["data"]["stream"]) == ("concept_drift", stream)
    (delivery,) = eventually(lambda: records(client, made, "delivered"), "a delivered record")
    assert (delivery["event_id"], delivery["attempts"], delivery["http_status"]) == (
        event_id,
        1,
        200,
    )
    history = client.get("/v1/alerts", params={"stream": stream}).json()["alerts"]
    assert [(a["id"], a["kind"], a["version"]) for a in history] == [(event_id, "concept_drift", 2)]


@pytest.mark.integration
def test_a_failing_receiver_gets_its_retries_then_a_failed_record(
    live: tuple[Settings, httpx.Client], hook_server: Callable[..., HookServer]
) -> None:
    settings, client = live
    hook, stream = hook_server([500]), settings.streams[0].name
    made = subscribe(client, hook.url(), stream)

    event_id = publish_as_the_learner(settings, concept_drift(stream))

    (failed,) = eventually(lambda: records(client, made, "failed"), "a failed record")
    assert (failed["event_id"], failed["attempts"], failed["http_status"]) == (event_id, 3, 500)
    assert failed["last_error"] == "HTTP 500"
    assert len(hook.received) == 3  # the first attempt and settings.notifier.retries = 2
    assert {r.headers["x-meander-event-id"] for r in hook.received} == {event_id}
    assert records(client, made, "delivered") is None


@pytest.mark.integration
def test_an_alertmanager_subscription_receives_version_4(
    live: tuple[Settings, httpx.Client], hook_server: Callable[..., HookServer]
) -> None:
    settings, client = live
    hook, stream = hook_server(), settings.streams[0].name
    made = subscribe(client, hook.url(), stream, format="alertmanager")

    event_id = publish_as_the_learner(settings, concept_drift(stream))

    (request,) = hook.wait_for(1)
    assert verify(
        made["secret"].encode(),
        request.body,
        request.headers["x-meander-timestamp"],
        request.headers["x-meander-signature"],
    )
    payload = orjson.loads(request.body)
    assert (payload["version"], payload["status"], payload["receiver"]) == (
        "4",
        "firing",
        made["id"],
    )
    (alert,) = payload["alerts"]
    assert alert["labels"] == {
        "alertname": "ConceptDrift",
        "stream": stream,
        "severity": "critical",
        "kind": "concept_drift",
        "model": stream,
    }
    assert event_id in alert["annotations"]["description"]
    assert payload["commonLabels"] == alert["labels"]


@pytest.mark.integration
def test_private_targets_are_refused_without_the_allow_flag(
    kafka_bootstrap: str,
    redis_url: str,
    serve: Callable[..., str],
    hook_server: Callable[..., HookServer],
) -> None:
    settings = live_settings(
        kafka_bootstrap, redis_url, allow_private_webhooks=False, components=[]
    )
    with httpx.Client(base_url=serve(settings), timeout=30) as client:
        response = client.post("/v1/subscriptions", json={"url": hook_server().url()})
        listed = client.get("/v1/subscriptions").json()["subscriptions"]

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "url"]
    assert "resolves to 127.0.0.1, a loopback address" in error["msg"]
    assert all(not made["url"].startswith("http://127.0.0.1") for made in listed)
