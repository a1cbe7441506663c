"""Predictions by event id, and live over SSE and WebSocket: embedded, then Kafka and Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from kafka import KafkaAdminClient
from kafka import TopicPartition as KafkaTopicPartition
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from meander import topics
from meander.bus import Record
from meander.config import Settings, StreamConfig
from meander.events import Prediction, encode
from meander.runtime import Runtime
from meander.services.auth import new_key
from tests.conftest import MakeRuntime
from tests.services.conftest import Serve, problem_of
from tests.services.routes.test_feeds import DEADLINE, TIMEOUT, sse_events, take
from tests.services.test_index import answer, publish

OPEN = {"anonymous_scopes": ["publish", "read", "admin"]}
FRAUD = StreamConfig(name="fraud", task="binary", features={"amount": "numeric"})


def eventually(fetch: Callable[[], httpx.Response]) -> httpx.Response:
    """The first answer that is not a 404: the index catches up in the background."""
    deadline = time.monotonic() + DEADLINE
    while (response := fetch()).status_code == 404:
        assert time.monotonic() < deadline, f"still 404 after {DEADLINE}s: {response.text}"
        time.sleep(0.05)
    return response


def frames(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [orjson.loads(socket.recv(timeout=DEADLINE)) for _ in range(count)]


def refusal(url: str, **options: Any) -> tuple[int, str]:
    """The close code and reason of a socket the service refuses."""
    with connect(url, **options) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=DEADLINE)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_a_prediction_by_id_is_the_champions_with_the_shadows(
    make_runtime: MakeRuntime, serve: Serve
) -> None:
    runtime = make_runtime(FRAUD, service=OPEN)
    base = serve(runtime.settings, runtime)
    url = f"{base}/v1/streams/fraud/predictions/e1"
    missing = httpx.get(url, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert "no prediction for event 'e1' of stream 'fraud'" in problem_of(missing)["msg"]
    publish(runtime, "fraud", answer("e1"), answer("e1", 2, "challenger"))
    found = eventually(lambda: httpx.get(url, timeout=TIMEOUT))
    assert found.status_code == 200
    body = found.json()
    assert (body["event_id"], body["stream"]) == ("e1", "fraud")
    assert body["champion"] == answer("e1").model_dump(mode="json")
    assert body["shadows"] == [answer("e1", 2, "challenger").model_dump(mode="json")]
    unknown = httpx.get(f"{base}/v1/streams/nope/predictions/e1", timeout=TIMEOUT)
    assert (unknown.status_code, "unknown stream 'nope'" in unknown.text) == (404, True)


def test_live_predictions_keep_to_the_version_and_role_asked(
    make_runtime: MakeRuntime, serve: Serve
) -> None:
    runtime = make_runtime(FRAUD, service=OPEN)
    base = serve(runtime.settings, runtime)
    url = f"{base}/v1/streams/fraud/predictions/live?role=challenger&model=3"
    with httpx.stream("GET", url, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        events = sse_events(response)
        publish(runtime, "fraud", answer("e1"), answer("e1", 2, "challenger"))
        publish(runtime, "fraud", answer("e1", 3, "challenger"), answer("e2", 3, "challenger"))
        received = take(events, 2, "prediction")
    assert sorted(e.data["event_id"] for e in received) == ["e1", "e2"]
    assert {(e.data["version"], e.data["role"]) for e in received} == {(3, "challenger")}
    assert all(e.data["id"] and e.data["time"].endswith("Z") for e in received)


def test_reconnecting_with_the_last_event_id_loses_and_repeats_nothing(
    make_runtime: MakeRuntime, serve: Serve
) -> None:
    runtime = make_runtime(FRAUD, service=OPEN)
    base = serve(runtime.settings, runtime)
    assert_resumes_exactly(runtime, base, "fraud")


def assert_resumes_exactly(runtime: Runtime, base: str, stream: str) -> None:
    url = f"{base}/v1/streams/{stream}/predictions/live"
    sent = [f"first-{n}" for n in range(8)]
    with httpx.stream("GET", url, timeout=TIMEOUT) as response:
        events = sse_events(response)
        publish(runtime, stream, *map(answer, sent))
        before = take(events, 3, "prediction")  # then the client drops
    later = [f"later-{n}" for n in range(8)]
    publish(runtime, stream, *map(answer, later))  # while nobody listens
    last = before[-1].id
    assert last is not None
    with httpx.stream("GET", url, headers={"Last-Event-ID": last}, timeout=TIMEOUT) as response:
        events = sse_events(response)
        after = take(events, len(sent) + len(later) - 3, "prediction")
        publish(runtime, stream, answer("sentinel"))
        [sentinel] = take(events, 1, "prediction")  # nothing beyond the expected ones came
    received = [e.data["event_id"] for e in before + after]
    assert sorted(received) == sorted(sent + later)
    assert sentinel.data["event_id"] == "sentinel"


def test_a_malformed_last_event_id_is_refused_naming_the_problem(
    make_runtime: MakeRuntime, serve: Serve
) -> None:
    runtime = make_runtime(FRAUD, service=OPEN)
    base = serve(runtime.settings, runtime)
    url = f"{base}/v1/streams/fraud/predictions/live"
    for cursor, problem in [
        ("0:1,x", "'x' is not partition:offset"),
        ("0:1,0:2", "names partition 0 twice"),
        ("9:0", "names partition 9, but fraud.predictions has 3"),
    ]:
        response = httpx.get(url, headers={"Last-Event-ID": cursor}, timeout=TIMEOUT)
        assert response.status_code == 400
        refused = problem_of(response)
        assert refused["loc"] == ["header", "last-event-id"]
        assert refused["msg"].startswith("Last-Event-ID: ") and problem in refused["msg"]


def test_predictions_arrive_over_a_websocket(make_runtime: MakeRuntime, serve: Serve) -> None:
    runtime = make_runtime(FRAUD, service=OPEN)
    socket_url = serve(runtime.settings, runtime).replace("http", "ws", 1)
    url = f"{socket_url}/v1/streams/fraud/predictions/ws"
    with connect(f"{url}?role=champion") as socket:  # connected: the reader is at the end
        publish_on(runtime, 0, answer("e1"), answer("e1", 2, "challenger"), answer("e2"))
        received = frames(socket, 2)
    assert [(f["event_id"], f["role"], f["cursor"]) for f in received] == [
        ("e1", "champion", "0:1,1:0,2:0"),
        ("e2", "champion", "0:3,1:0,2:0"),
    ]
    # ?cursor= resumes a socket just after the frame it came with.
    with connect(f"{url}?cursor={received[0]['cursor']}") as again:
        resumed = frames(again, 2)
        publish_on(runtime, 0, answer("sentinel"))
        [sentinel] = frames(again, 1)
    assert [(f["event_id"], f["version"]) for f in resumed] == [("e1", 2), ("e2", 1)]
    assert sentinel["event_id"] == "sentinel"


def publish_on(runtime: Runtime, partition: int, *predictions: Prediction) -> None:
    """Publish on one partition of fraud.predictions, so that their order is known."""
    topic = topics.predictions("fraud")
    records = [encode(topic, p, source="/test") for p in predictions]
    runtime.bus.publish([Record(topic, r.value, r.key, r.headers, partition) for r in records])


def test_a_websocket_is_refused_with_the_code_and_the_reason(
    make_runtime: MakeRuntime, serve: Serve
) -> None:
    reader, reader_digest = new_key()
    writer, writer_digest = new_key()
    keys = [
        {"name": "reader", "digest": reader_digest, "scopes": ["read"]},
        {"name": "writer", "digest": writer_digest, "scopes": ["publish"]},
    ]
    runtime = make_runtime(FRAUD, service={"api_keys": keys})
    socket_url = serve(runtime.settings, runtime).replace("http", "ws", 1)
    url = f"{socket_url}/v1/streams/fraud/predictions/ws"
    assert refusal(url) == (1008, "an API key is required: X-API-Key, Authorization or ?api_key=")
    assert refusal(f"{url}?api_key=mnd_wrong") == (1008, "the API key is not valid")
    assert refusal(url, additional_headers={"X-API-Key": writer}) == (
        1008,
        "the key 'writer' lacks the 'read' scope",
    )
    code, reason = refusal(f"{url}?api_key={reader}&model=three")
    assert (code, reason.split(",")[0]) == (4400, "model: Input should be a valid integer")
    code, reason = refusal(f"{url}?api_key={reader}&cursor=0:1;1:2")
    assert (code, reason.startswith("cursor: '0:1;1:2' is not a cursor")) == (4400, True)
    code, reason = refusal(f"{socket_url}/v1/streams/nope/predictions/ws?api_key={reader}")
    assert (code, reason) == (4404, "unknown stream 'nope'; configured streams: fraud")
    bearer = {"Authorization": f"Bearer {reader}"}
    with connect(url, additional_headers=bearer) as socket:
        publish(runtime, "fraud", answer("e1"))
        assert frames(socket, 1)[0]["event_id"] == "e1"


def kafka_settings(kafka_bootstrap: str, redis_url: str) -> tuple[Settings, str]:
    stream = FRAUD.model_copy(update={"name": f"live-{uuid.uuid4().hex[:8]}"})
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, streams=[stream], service=OPEN
    )
    return settings, stream.name


@pytest.mark.integration
def test_a_prediction_arrives_over_sse_websocket_and_by_id_on_kafka(
    kafka_bootstrap: str, redis_url: str, serve: Serve
) -> None:
    settings, stream = kafka_settings(kafka_bootstrap, redis_url)
    with Runtime.open(settings) as runtime:
        base = serve(settings)
        live = f"{base}/v1/streams/{stream}/predictions/live"
        socket_url = f"{base.replace('http', 'ws', 1)}/v1/streams/{stream}/predictions/ws"
        with httpx.stream("GET", live, timeout=TIMEOUT) as response, connect(socket_url) as ws:
            events = sse_events(response)
            publish(runtime, stream, answer("k1"), answer("k1", 2, "challenger"))
            over_sse = take(events, 2, "prediction")
            over_socket = frames(ws, 2)
        for received in ([e.data for e in over_sse], over_socket):
            assert sorted((p["event_id"], p["version"], p["role"]) for p in received) == [
                ("k1", 1, "champion"),
                ("k1", 2, "challenger"),
            ]
        url = f"{base}/v1/streams/{stream}/predictions/k1"
        body = eventually(lambda: httpx.get(url, timeout=TIMEOUT)).json()
    assert (body["champion"]["version"], [s["version"] for s in body["shadows"]]) == (1, [2])


@pytest.mark.integration
def test_reconnecting_on_kafka_loses_and_repeats_nothing(
    kafka_bootstrap: str, redis_url: str, serve: Serve
) -> None:
    settings, stream = kafka_settings(kafka_bootstrap, redis_url)
    with Runtime.open(settings) as runtime:
        assert_resumes_exactly(runtime, serve(settings), stream)


@pytest.mark.integration
def test_a_cursor_older_than_the_retention_resumes_at_the_earliest_kept(
    kafka_bootstrap: str, redis_url: str, serve: Serve
) -> None:
    settings, stream = kafka_settings(kafka_bootstrap, redis_url)
    topic = topics.predictions(stream)
    with Runtime.open(settings) as runtime:
        records = [encode(topic, answer(f"r{n}"), source="/test") for n in range(6)]
        runtime.bus.publish([Record(topic, r.value, r.key, r.headers, 0) for r in records])
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:  # what retention would have done: the first four are gone
            admin.delete_records({KafkaTopicPartition(topic, 0): 4})
        finally:
            admin.close()
        url = f"{serve(settings)}/v1/streams/{stream}/predictions/live"
        with httpx.stream(
            "GET", url, headers={"Last-Event-ID": "0:1,1:0,2:0"}, timeout=TIMEOUT
        ) as r:
            received = take(sse_events(r), 2, "prediction")
    assert [(e.data["event_id"], e.id) for e in received] == [
        ("r4", "0:5,1:0,2:0"),
        ("r5", "0:6,1:0,2:0"),
    ]
