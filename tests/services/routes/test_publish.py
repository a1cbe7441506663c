"""Publishing events and feedback over HTTP, on the embedded backends."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meander import topics
from meander.config import StreamConfig
from meander.events.values import MOMENT_SCHEMA
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.auth import new_key
from tests.conftest import MakeRuntime, ReadTopic
from tests.services.conftest import problem_of

OPEN = {"anonymous_scopes": ["publish", "read", "admin"]}


@pytest.fixture
def credit() -> StreamConfig:
    return StreamConfig(
        name="credit",
        task="binary",
        features={
            "age": {"type": "numeric", "minimum": 18, "maximum": 120},
            "car": {"type": "categorical", "categories": ["bike", "car"], "required": False},
        },
    )


def client_for(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime.settings, runtime=runtime))


@pytest.fixture
def runtime(make_runtime: MakeRuntime, credit: StreamConfig) -> Runtime:
    return make_runtime(credit, service=OPEN)


def test_one_event_is_published_with_its_id(runtime: Runtime, read_topic: ReadTopic) -> None:
    answer = client_for(runtime).post(
        "/v1/streams/credit/events", json={"id": "e1", "features": {"age": 40, "car": "bike"}}
    )
    assert answer.status_code == 202
    assert answer.json() == {"stream": "credit", "count": 1, "ids": ["e1"]}
    [event] = read_topic(runtime, topics.events("credit"))
    assert (event.id, event.payload.features) == ("e1", {"age": 40, "car": "bike"})  # type: ignore[attr-defined]


def test_an_array_and_ndjson_publish_every_event(runtime: Runtime, read_topic: ReadTopic) -> None:
    client = client_for(runtime)
    batch = [{"features": {"age": age, "car": "car"}} for age in (20, 30)]
    assert client.post("/v1/streams/credit/events", json=batch).json()["count"] == 2
    lines = b'{"id": "n1", "features": {"age": 50}}\n\n{"id": "n2", "features": {"age": 60}}\n'
    answer = client.post(
        "/v1/streams/credit/events",
        content=lines,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.json()["ids"] == ["n1", "n2"]
    assert len(read_topic(runtime, topics.events("credit"))) == 4


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ([{"features": {"age": 40}}, {"features": {"age": 130}}], [1, "features"], "maximum 120"),
        ([{"features": {"age": 40, "colour": "red"}}], [0, "features"], "unknown feature"),
        ([{"features": {"age": 40}}, {"feature": {}}], [1, "features"], "Field required"),
        ({"features": {"age": 40}, "id": ""}, [0, "id"], "at least 1 character"),
        ([], [], "holds no items"),
    ],
)
def test_a_wrong_event_is_named_and_nothing_is_published(
    runtime: Runtime, read_topic: ReadTopic, body: Any, where: list[Any], words: str
) -> None:
    answer = client_for(runtime).post("/v1/streams/credit/events", json=body)
    assert answer.status_code == 422
    problem = answer.json()["detail"][0]
    assert problem["loc"][: len(where) + 1] == ["body", *where]
    assert words in problem["msg"]
    assert read_topic(runtime, topics.events("credit")) == []


def test_malformed_json_and_other_media_types_are_refused(runtime: Runtime) -> None:
    client = client_for(runtime)
    broken = client.post(
        "/v1/streams/credit/events", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert "not valid JSON" in broken.json()["detail"][0]["msg"]
    bad_line = client.post(
        "/v1/streams/credit/events",
        content=b'{"features": {"age": 40}}\n{oops\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert bad_line.json()["detail"][0]["loc"] == ["body", 1]
    xml = client.post(
        "/v1/streams/credit/events", content=b"<e/>", headers={"Content-Type": "text/xml"}
    )
    assert xml.status_code == 415


def test_a_gzip_body_is_read_and_other_encodings_get_415(
    make_runtime: MakeRuntime, credit: StreamConfig, read_topic: ReadTopic
) -> None:
    # gzip got 415 (and before that 422 "not valid JSON"); clients such as log shippers send it.
    runtime = make_runtime(credit, service={**OPEN, "max_body_bytes": 100_000})
    client = client_for(runtime)
    gzipped = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    body = gzip.compress(b'{"id": "gz1", "features": {"age": 40}}')
    assert (
        client.post("/v1/streams/credit/events", content=body, headers=gzipped).status_code == 202
    )
    [event] = read_topic(runtime, topics.events("credit"))
    assert event.id == "gz1"
    bomb = gzip.compress(b" " * 200_000)  # 200 kB of spaces in a few hundred bytes
    too_big = client.post("/v1/streams/credit/events", content=bomb, headers=gzipped)
    assert too_big.status_code == 413
    assert "once decompressed" in too_big.json()["detail"][0]["msg"]
    for broken in (b"not gzip", body[:-5]):
        answer = client.post("/v1/streams/credit/events", content=broken, headers=gzipped)
        assert answer.status_code == 422 and answer.json()["detail"][0]["type"] == "gzip_invalid"
    brotli = {"Content-Type": "application/json", "Content-Encoding": "br"}
    answer = client.post("/v1/streams/credit/events", content=b"x", headers=brotli)
    assert answer.status_code == 415
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["header", "content-encoding"]
    assert problem["msg"] == "unsupported Content-Encoding 'br': send the body uncompressed or gzip"
    plain = {"Content-Type": "application/json", "Content-Encoding": "identity"}
    same = client.post("/v1/streams/credit/feedback", content=b"[]", headers=plain)
    assert same.status_code == 422  # identity is no encoding at all


def test_limits_on_batch_size_and_body_size(
    make_runtime: MakeRuntime, credit: StreamConfig
) -> None:
    runtime = make_runtime(credit, service={**OPEN, "max_batch_events": 2, "max_body_bytes": 500})
    client = client_for(runtime)
    three = [{"features": {"age": 40}}] * 3
    assert client.post("/v1/streams/credit/events", json=three).status_code == 413
    huge = {"features": {"age": 40}, "entity": "x" * 600}
    answer = client.post("/v1/streams/credit/events", json=huge)
    assert answer.status_code == 413
    assert "limit of 500 bytes" in problem_of(answer)["msg"]


def test_an_unknown_stream_is_404_naming_the_known_ones(runtime: Runtime) -> None:
    answer = client_for(runtime).post("/v1/streams/nope/events", json={"features": {}})
    assert answer.status_code == 404
    assert problem_of(answer)["loc"] == ["path", "stream"]
    assert "configured streams: credit" in problem_of(answer)["msg"]


def test_feedback_is_published_and_a_wrong_label_type_refused(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    price = StreamConfig(name="price", task="regression", features={"size": {}})
    runtime = make_runtime(price, service=OPEN)
    client = client_for(runtime)
    good = client.post("/v1/streams/price/feedback", json=[{"event_id": "e1", "label": 12.5}])
    assert (good.status_code, good.json()["ids"]) == (202, ["e1"])
    [label] = read_topic(runtime, topics.feedback("price"))
    assert label.payload.label == 12.5  # type: ignore[attr-defined]
    wrong = client.post("/v1/streams/price/feedback", json={"event_id": "e2", "label": "high"})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", 0, "label"]
    assert "not a number" in wrong.json()["detail"][0]["msg"]


def test_keys_and_scopes(make_runtime: MakeRuntime, credit: StreamConfig) -> None:
    publisher, publisher_digest = new_key()
    reader, reader_digest = new_key()
    runtime = make_runtime(
        credit,
        service={
            "api_keys": [
                {"name": "ingest", "digest": publisher_digest, "scopes": ["publish"]},
                {"name": "viewer", "digest": reader_digest, "scopes": ["read"]},
            ]
        },
    )
    client = client_for(runtime)
    event = {"features": {"age": 40}}
    url = "/v1/streams/credit/events"
    missing = client.post(url, json=event)
    assert (missing.status_code, missing.headers["WWW-Authenticate"]) == (401, "Bearer")
    assert client.post(url, json=event, headers={"X-API-Key": "mnd_forged"}).status_code == 401
    forbidden = client.post(url, json=event, headers={"X-API-Key": reader})
    assert forbidden.status_code == 403
    assert "'viewer' lacks the 'publish' scope" in problem_of(forbidden)["msg"]
    bearer = {"Authorization": f"Bearer {publisher}"}
    assert client.post(url, json=event, headers=bearer).status_code == 202


def test_what_the_service_publishes_is_counted(runtime: Runtime) -> None:
    from prometheus_client import REGISTRY

    def produced() -> float:
        labels = {"component": "service", "stream": "credit"}
        return REGISTRY.get_sample_value("meander_events_produced_total", labels) or 0.0

    before = produced()
    batch = [{"features": {"age": age}} for age in (20, 30, 40)]
    assert client_for(runtime).post("/v1/streams/credit/events", json=batch).status_code == 202
    assert produced() - before == 3


def test_times_are_rfc_3339_or_unix_time_as_the_schema_says(
    runtime: Runtime, read_topic: ReadTopic
) -> None:
    # Numbers were taken as Unix times while the OpenAPI said a date-time string (schemathesis).
    client = client_for(runtime)
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/streams/{stream}/feedback"]["post"]["requestBody"]
    observed_at = body["content"]["application/json"]["schema"]["oneOf"][0]["properties"]
    alerts = schema["paths"]["/v1/alerts"]["get"]["parameters"]
    since = next(p["schema"] for p in alerts if p["name"] == "since")
    for said in (observed_at["observed_at"], since):
        assert MOMENT_SCHEMA["anyOf"][1] in said["anyOf"]
    new_year = "2026-01-01T00:00:00+00:00"
    times = [new_year, 1_767_225_600, 1_767_225_600_000, 1_767_225_600.0]
    events = [{"time": t, "features": {"age": 30}} for t in times]
    assert client.post("/v1/streams/credit/events", json=events).status_code == 202
    published = read_topic(runtime, topics.events("credit"))
    assert {e.payload.time.isoformat() for e in published} == {new_year}  # type: ignore[attr-defined]
    labels = [{"event_id": "e", "label": True, "observed_at": t} for t in times]
    assert client.post("/v1/streams/credit/feedback", json=labels).status_code == 202
    for t in times:
        assert client.get("/v1/alerts", params={"since": t, "until": t}).status_code == 200
