"""Health, readiness against the real backends (and dead ones), metrics."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from meander.config import Settings
from services import create_app


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
