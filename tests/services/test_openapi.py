"""schemathesis against the OpenAPI schema of a real server on real Kafka and Redis: whatever
the schema allows a client to send, the service answers without a server error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from meander.config import Settings, StreamConfig
from meander.services import create_app
from tests.adversarial import OTHER_THREADS_USE_RANDOM
from tests.services.conftest import RunningServer

pytestmark = [pytest.mark.integration, OTHER_THREADS_USE_RANDOM]


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, redis_url: str) -> Iterator[str]:
    stream = StreamConfig(
        name=f"fuzz{uuid.uuid4().hex[:6]}",
        task="binary",
        features={
            "amount": {"type": "numeric", "minimum": 0},
            "country": {"type": "categorical", "categories": ["NL", "FR"], "required": False},
        },
    )
    server = RunningServer(
        Settings(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            model_signing_key="schemathesis test key, long enough to sign",
            streams=[stream],
            service={"anonymous_scopes": ["publish", "read", "admin"], "max_batch_events": 50},
        )
    )
    # The first publish opens the backends and fetches the topic's metadata: do it before the
    # fuzzing, so a cold start is not mistaken for a server error.
    warm = httpx.post(
        f"{server.url}/v1/streams/{stream.name}/events",
        json={"features": {"amount": 1.0}},
        timeout=60,
    )
    assert warm.status_code == 202, warm.text
    yield server.url
    server.stop()


@schemathesis.serializer("application/x-ndjson")
def ndjson(_context: object, value: object) -> bytes:
    # The schema gives an NDJSON body as one string: send it as it is, lines and all.
    return value.encode() if isinstance(value, str) else b""


# The schema is the app's own (it does not depend on the backends); the calls go to the real
# server. Live streams never end on their own; they have their own tests.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(
    path_regex=r"/live$"
)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_error(case: schemathesis.Case, api: str, fuzzed: dict[str, int]) -> None:
    case.call_and_validate(base_url=api, checks=[not_a_server_error], timeout=30)
    fuzzed["schemathesis requests"] = fuzzed.get("schemathesis requests", 0) + 1
