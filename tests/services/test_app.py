"""Health, readiness against the real backends (and dead ones), metrics."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from meander.config import Settings, StreamConfig
from meander.services import create_app


def client(**settings: object) -> TestClient:
    return TestClient(create_app(Settings(**settings)))  # type: ignore[arg-type]


def test_healthz() -> None:
    assert client().get("/healthz").json() == {"status": "ok"}


def test_ready_on_the_embedded_backends() -> None:
    response = client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"bus": "ok", "store": "ok"}}


def test_not_ready_says_which_backend_and_why() -> None:
    response = client(
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        kafka_timeout_seconds=1,
        redis_timeout_seconds=1,
    ).get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert "no Kafka broker answered at 127.0.0.1:1" in checks["bus"]
    assert "Redis at redis://127.0.0.1:1/0 did not answer" in checks["store"]


@pytest.mark.integration
def test_ready_on_real_kafka_and_redis(kafka_bootstrap: str, redis_url: str) -> None:
    response = client(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url).get("/readyz")
    assert (response.status_code, response.json()["ready"]) == (200, True)


def test_metrics_parse_as_prometheus_text() -> None:
    response = client().get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert "python_info" in names


def test_metrics_are_documented_as_the_text_they_are() -> None:
    # Found by schemathesis (ST105): the OpenAPI said application/json.
    app = client()
    documented = app.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]["200"]
    served = app.get("/metrics").headers["content-type"]
    assert list(documented["content"]) == ["text/plain"]
    assert served.startswith("text/plain")


def requests_counted(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("meander_http_requests_total", labels) or 0.0


def test_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    name = f"http{uuid.uuid4().hex[:8]}"
    stream = StreamConfig(name=name, task="binary", features={"x": "numeric"})
    opened = {"max_body_bytes": 100, "anonymous_scopes": ["read", "publish"]}
    app = client(streams=[stream], service=opened)
    route = "/v1/streams/{stream}/schema"
    before = {
        key: requests_counted(*key)
        for key in [
            ("GET", route, "200"),
            ("GET", route, "404"),
            ("GET", "unmatched", "404"),
            ("POST", "/v1/streams/{stream}/events", "413"),
            ("other", "unmatched", "404"),
        ]
    }

    assert app.get(f"/v1/streams/{stream.name}/schema").status_code == 200
    assert app.get("/v1/streams/no-such-stream/schema").status_code == 404
    assert app.get(f"/nowhere/{uuid.uuid4().hex}").status_code == 404
    assert app.post(f"/v1/streams/{stream.name}/events", content=b" " * 200).status_code == 413
    assert app.request("BREW", "/coffee").status_code == 404

    assert {key: requests_counted(*key) - count for key, count in before.items()} == dict.fromkeys(
        before, 1.0
    )
    text = generate_latest(REGISTRY).decode()
    assert stream.name not in text and "no-such-stream" not in text and "BREW" not in text
    timed = REGISTRY.get_sample_value(
        "meander_http_request_duration_seconds_count", {"method": "GET", "route": route}
    )
    assert (timed or 0.0) >= 2


def test_a_client_that_leaves_before_its_body_arrived_is_no_server_error() -> None:
    # It was counted as a 500 and logged as an error with the stack, one per such client.
    name = f"gone{uuid.uuid4().hex[:8]}"
    stream = StreamConfig(name=name, task="binary", features={"x": "numeric"})
    settings = Settings(streams=[stream], service={"anonymous_scopes": ["publish"]})
    app = create_app(settings)
    route = "/v1/streams/{stream}/events"
    before = {status: requests_counted("POST", route, status) for status in ("499", "500")}
    arriving = iter(
        [
            {"type": "http.request", "body": b'{"x": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(arriving)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(_post(f"/v1/streams/{name}/events"), receive, send))

    assert sent[0]["status"] == 499
    after = {status: requests_counted("POST", route, status) for status in ("499", "500")}
    assert {status: after[status] - before[status] for status in after} == {"499": 1, "500": 0}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/subscriptions", "GET, POST"),
        ("PUT", "/v1/subscriptions/sub_0123456789abcdef", "GET, PATCH, DELETE"),
        ("GET", "/v1/streams/sea/rollback", "POST"),
        ("DELETE", "/healthz", "GET"),
    ],
)
def test_a_405_lists_every_method_of_the_path(method: str, path: str, allowed: str) -> None:
    # Found by schemathesis: Allow named the methods of one route of the path ("Allow: POST"
    # for /v1/subscriptions, which has GET too), where RFC 9110 asks for the resource's.
    answer = client().request(method, path)
    assert (answer.status_code, answer.headers["allow"]) == (405, allowed)
    assert answer.json()["detail"] == [
        {
            "loc": ["method"],
            "msg": f"{method} is not a method of this path; it takes {allowed}",
            "type": "method_not_allowed",
        }
    ]


def _post(path: str) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
