"""Refused requests: one shape for every 4xx, never a 5xx for what a client sent, and never a
refusal that costs the requests after it.

Each test is a finding of the issue that asked for this: an event dated 2099 got 503 and so
did every publish after it, while /readyz said ready; NaN, Infinity, a lone surrogate or invalid
UTF-8 in a body got 500 and a reset connection; a label of no class of the stream was taken;
features the champion could not score got 500; errors differed by route.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from river import tree

from meander.config import Settings, StreamConfig
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.auth import new_key
from tests.conftest import MakeRuntime, ReadTopic
from tests.integration.conftest import SIGNING_KEY
from tests.services.conftest import Serve, documented, problem_of

OPEN = {
    "anonymous_scopes": ["publish", "read", "admin"],
    "allow_private_webhooks": True,
    "max_batch_events": 2,
}
STREAM = StreamConfig(
    name="ripe",
    task="binary",
    features={"size": {"minimum": 0}, "zip": {"type": "categorical", "required": False}},
)
HOURS_AHEAD = (datetime.now(UTC) + timedelta(hours=2)).isoformat()


def champion(runtime: Runtime) -> None:
    """A tree that splits zip codes as numbers: a string zip passes the schema, not the tree."""
    model = tree.HoeffdingTreeClassifier(grace_period=10)
    for i in range(300):
        model.learn_one({"size": i % 7, "zip": i % 50}, (i % 50) > 25)
    registry = Registry(runtime.store, STREAM.name, signer_for(runtime.settings))
    registry.promote(registry.register(model, spec="tree.HoeffdingTreeClassifier").version)


@pytest.fixture
def url(make_runtime: MakeRuntime, serve: Serve) -> str:
    runtime = make_runtime(STREAM, service=OPEN)
    champion(runtime)
    return serve(runtime.settings, runtime)


@pytest.fixture
def on_kafka(kafka_bootstrap: str, redis_url: str, serve: Serve) -> Iterator[tuple[str, str]]:
    """A service on the real backends, whose window lets through times the broker refuses."""
    stream = STREAM.model_copy(update={"name": f"ripe{uuid.uuid4().hex[:8]}"})
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key=SIGNING_KEY,
        streams=[stream],
        service=OPEN,
    )
    yield serve(settings), stream.name


def post(base: str, path: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    headers.setdefault("content-type", "application/json")
    return httpx.post(f"{base}{path}", content=content, headers=headers, timeout=30)


@pytest.mark.integration
def test_a_time_ahead_of_the_window_is_422_and_publishing_goes_on(
    on_kafka: tuple[str, str],
) -> None:
    base, stream = on_kafka
    events, feedback = f"/v1/streams/{stream}/events", f"/v1/streams/{stream}/feedback"
    ahead = post(
        base,
        events,
        [{"features": {"size": 1}}, {"features": {"size": 2}, "time": "2099-01-01T00:00:00Z"}],
    )
    late = post(base, feedback, {"event_id": "e1", "label": True, "observed_at": HOURS_AHEAD})
    before = post(base, events, {"features": {"size": 1}, "time": "1960-01-01T00:00:00Z"})

    assert problem_of(ahead)["loc"] == ["body", 1, "time"]
    assert problem_of(ahead)["type"] == "time"
    assert problem_of(ahead)["msg"].startswith("time 2099-01-01T00:00:00Z is 7")
    assert problem_of(late)["loc"] == ["body", 0, "observed_at"]
    assert "before 1970" in problem_of(before)["msg"]
    for _ in range(3):
        assert post(base, events, {"features": {"size": 3}}).status_code == 202
        assert post(base, feedback, {"event_id": "e1", "label": True}).status_code == 202
    assert httpx.get(f"{base}/readyz").json()["ready"] is True


@pytest.mark.integration
def test_a_record_the_broker_refuses_fails_its_request_alone(
    kafka_bootstrap: str, redis_url: str, serve: Serve
) -> None:
    # A window wider than the broker's (an hour): the service lets the time through, the
    # broker refuses the record, and kafka-python leaves the producer failed. The service's
    # producer is put aside, so the next requests are published.
    stream = STREAM.model_copy(update={"name": f"wide{uuid.uuid4().hex[:8]}"})
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key=SIGNING_KEY,
        max_clock_skew_seconds=3 * 3600,
        streams=[stream],
        service=OPEN | {"publish_attempts": 1},
    )
    base = serve(settings)
    events = f"/v1/streams/{stream.name}/events"
    assert post(base, events, {"features": {"size": 1}}).status_code == 202
    refused = post(base, events, {"features": {"size": 1}, "time": HOURS_AHEAD})
    assert refused.status_code == 503 and "InvalidTimestampError" in refused.json()["detail"]
    for _ in range(3):
        assert post(base, events, {"features": {"size": 1}}).status_code == 202
    assert httpx.get(f"{base}/readyz").json() == {
        "ready": True,
        "checks": {"bus": "ok", "store": "ok"},
    }


BODIES = {
    "NaN": b'{"reason": NaN, "url": NaN, "features": {"size": NaN}, "label": NaN}',
    "Infinity": b'{"reason": Infinity, "features": {"size": -Infinity}}',
    "a number beyond a double": b'{"reason": 1e999, "features": {"size": 1e999}}',
    "a lone surrogate": b'{"reason": "\\ud800", "url": "\\udc00", "features": {"\\ud800": 1}}',
    "invalid UTF-8": b'{"reason": "\xff\xfe", "features": {"size": 1, "zip": "\xed\xa0\x80"}}',
    "deep nesting": b"[" * 5_000 + b"]" * 5_000,
}
ROUTES = [
    ("POST", "/v1/subscriptions"),
    ("PATCH", "/v1/subscriptions/sub_0123456789abcdef"),
    ("POST", "/v1/streams/ripe/predict"),
    ("POST", "/v1/streams/ripe/models/1/promote"),
    ("POST", "/v1/streams/ripe/rollback"),
    ("POST", "/v1/streams/ripe/events"),
    ("POST", "/v1/streams/ripe/feedback"),
]


@pytest.mark.parametrize("body", list(BODIES), ids=list(BODIES))
def test_json_outside_the_standard_is_422_on_every_route(url: str, body: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path in ROUTES:
            answer = client.request(
                method, path, content=BODIES[body], headers={"content-type": "application/json"}
            )
            assert answer.status_code == 422, (method, path, answer.text)
            assert problem_of(answer)["type"] == "json_invalid", (method, path)
            assert problem_of(answer)["msg"].startswith("not valid JSON: ")
        assert client.get("/healthz").status_code == 200  # the connection was not reset


def test_a_body_not_in_utf8_is_422_saying_so(url: str) -> None:
    # It said "str is not valid UTF-8: surrogates not allowed" (orjson's words) of Latin-1.
    latin1 = '{"features": {"size": 1, "zip": "Séte"}}'.encode("latin-1")
    said = "not valid JSON: byte 0xe9 at offset 34 is not UTF-8, and JSON text is UTF-8: encode "
    for kind, loc in (("application/json", ["body"]), ("application/x-ndjson", ["body", 0])):
        answer = post(url, "/v1/streams/ripe/events", latin1, **{"content-type": kind})
        assert problem_of(answer) == {
            "loc": loc,
            "msg": said + "it as UTF-8",
            "type": "json_invalid",
        }


def test_features_the_champion_cannot_score_are_422_with_the_reason(url: str) -> None:
    good = post(url, "/v1/streams/ripe/predict", {"features": {"size": 1, "zip": 30}})
    answer = post(url, "/v1/streams/ripe/predict", {"features": {"size": 1, "zip": "A1"}})

    assert good.status_code == 200, good.text
    assert problem_of(answer) == {
        "loc": ["body", "features"],
        "msg": "champion v1 cannot score these features: TypeError: '<=' not supported "
        "between instances of 'str' and 'float'",
        "type": "model",
    }


def test_a_label_of_no_class_of_the_stream_is_422(url: str, read_topic: ReadTopic) -> None:
    answers = [
        post(url, "/v1/streams/ripe/feedback", [{"event_id": "e1", "label": label}])
        for label in ("maybe", 2, None, 0.5)
    ]
    assert [problem_of(a)["msg"] for a in answers] == [
        "label 'maybe' is not one of the stream's classes: False, True",
        "label 2 is not one of the stream's classes: False, True",
        "must be a boolean, an integer, a number or a string, not null",
        "label 0.5 (float) is not a class label: use a bool, an int or a string",
    ]
    assert [problem_of(a)["loc"] for a in answers] == [["body", 0, "label"]] * 4
    assert post(url, "/v1/streams/ripe/feedback", {"event_id": "e1", "label": 1}).status_code == 202


def test_every_documented_refusal_is_answered_in_the_one_shape(
    url: str, make_runtime: MakeRuntime, serve: Serve
) -> None:
    reader, key = new_key()
    keyed = make_runtime(
        STREAM, service={"api_keys": [{"name": "r", "digest": key, "scopes": ["read"]}]}
    )
    guarded = serve(keyed.settings, keyed)
    future = {"features": {"size": 1}, "time": "2099-01-01T00:00:00Z"}
    cases = [
        (httpx.get(f"{url}/v1/streams/ripe/predictions/live", headers={"Last-Event-ID": "x"}),
         400, ["header", "last-event-id"], "bad_cursor"),
        (httpx.get(f"{guarded}/v1/streams"), 401, ["header", "authorization"], "unauthorized"),
        (post(guarded, "/v1/streams/ripe/events", {}, **{"X-API-Key": reader}), 403,
         ["header", "authorization"], "forbidden"),
        (post(url, "/v1/streams/nope/events", {}), 404, ["path", "stream"], "not_found"),
        (httpx.get(f"{url}/v1/streams/ripe/predictions/nothing"), 404, ["path", "event_id"],
         "not_found"),
        (httpx.get(f"{url}/v1/nowhere"), 404, ["path"], "not_found"),
        (httpx.put(f"{url}/v1/streams/ripe/events"), 405, ["method"], "method_not_allowed"),
        (post(url, "/v1/streams/ripe/models/1/promote", {"reason": "again"}), 409,
         ["path", "version"], "conflict"),
        (post(url, "/v1/streams/ripe/events", [{"features": {"size": 1}}] * 3), 413, ["body"],
         "too_large"),
        (post(url, "/v1/streams/ripe/events", b"x", **{"content-type": "text/csv"}), 415,
         ["header", "content-type"], "unsupported_media_type"),
        (post(url, "/v1/streams/ripe/events", b"[NaN]"), 422, ["body"], "json_invalid"),
        (post(url, "/v1/streams/ripe/events", {"features": {"size": -1}}), 422,
         ["body", 0, "features"], "schema"),
        (post(url, "/v1/streams/ripe/predict", future), 422, ["body", "time"], "time"),
        (post(url, "/v1/streams/ripe/feedback", {"event_id": "e", "label": "maybe"}), 422,
         ["body", 0, "label"], "label"),
        (post(url, "/v1/streams/ripe/predict", {"features": {"size": 1, "zip": "A1"}}), 422,
         ["body", "features"], "model"),
        (post(url, "/v1/streams/ripe/events", b""), 422, ["body"], "missing"),
        (httpx.get(f"{url}/v1/alerts", params={"limit": "many"}), 422, ["query", "limit"],
         "int_parsing"),
    ]  # fmt: skip
    for answer, status, loc, kind in cases:
        problem = problem_of(answer)
        assert (answer.status_code, problem["loc"], problem["type"]) == (status, loc, kind), (
            answer.text
        )
    answered = {(status, kind) for _, status, _, kind in cases}
    assert documented() <= answered  # the docs say nothing the service does not answer


def test_the_schema_documents_the_refusals_and_the_batch_classes() -> None:
    schema = create_app(Settings()).openapi()
    events = schema["paths"]["/v1/streams/{stream}/events"]["post"]["responses"]
    assert {"401", "403", "404", "413", "415", "422"} <= set(events)
    assert events["415"]["content"]["application/json"]["schema"]["$ref"].endswith("/Problems")
    batch = schema["paths"]["/v1/streams/{stream}/batch"]["post"]["responses"]["200"]
    scored = batch["content"]["application/json"]["schema"]["properties"]
    assert scored["classes"]["examples"] == [["False", "True"]]
    assert "proba_True" in scored["predictions"]["examples"][0][0]


def test_an_answer_lists_at_most_a_hundred_problems_and_counts_the_rest(url: str) -> None:
    label = {"event_id": "e1", "label": True, **{f"extra{i}": i for i in range(150)}}
    answer = post(url, "/v1/streams/ripe/feedback", label)
    detail = answer.json()["detail"]
    assert answer.status_code == 422 and len(detail) == 101
    assert {p["type"] for p in detail[:100]} == {"extra_forbidden"}
    assert detail[100] == {
        "loc": ["body"],
        "msg": "and 50 more problems like these",
        "type": "more",
    }
