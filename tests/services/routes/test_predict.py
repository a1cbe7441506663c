"""Synchronous predictions: answered by the champion, recorded, and passed by predictors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from river import tree

from meander import topics
from meander.config import StreamConfig
from meander.consumers.predictor.predictor import SERVED_SOURCE, Predictor
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime
from meander.services import create_app
from tests.conftest import MakeRuntime, ReadTopic

OPEN = {"anonymous_scopes": ["publish", "read", "admin"]}
STREAM = StreamConfig(name="ripe", task="binary", features={"size": {}, "colour": {"minimum": 0}})


def champion(runtime: Runtime) -> int:
    model = tree.HoeffdingTreeClassifier(grace_period=10)
    for size in range(200):
        model.learn_one({"size": size, "colour": size % 3}, size > 100)
    registry = Registry(runtime.store, STREAM.name, signer_for(runtime.settings))
    version = registry.register(model, spec="tree.HoeffdingTreeClassifier").version
    registry.promote(version)
    return version


def test_the_champion_answers_and_the_answer_is_recorded(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    runtime = make_runtime(STREAM, service=OPEN)
    version = champion(runtime)
    client = TestClient(create_app(runtime.settings, runtime=runtime))
    answer = client.post(
        "/v1/streams/ripe/predict", json={"id": "p1", "features": {"size": 180, "colour": 1}}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["event_id"], body["version"], body["prediction"]) == ("p1", version, True)
    assert body["probabilities"]["True"] > 0.5
    [event] = read_topic(runtime, topics.events("ripe"))
    [prediction] = read_topic(runtime, topics.predictions("ripe"))
    assert (event.id, event.source) == ("p1", SERVED_SOURCE)
    assert prediction.payload.event_id == "p1"  # type: ignore[attr-defined]
    # A predictor reading S.events passes it by: its one prediction is the service's.
    predictor = Predictor(runtime, STREAM)
    predictor.step(0.1)
    assert (predictor.handled, predictor.scored) == (1, 0)
    assert len(read_topic(runtime, topics.predictions("ripe"))) == 1


def test_a_promotion_is_served_from_the_next_request(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(STREAM, service=OPEN)
    first = champion(runtime)
    client = TestClient(create_app(runtime.settings, runtime=runtime))
    event = {"features": {"size": 5, "colour": 0}}
    assert client.post("/v1/streams/ripe/predict", json=event).json()["version"] == first
    second = champion(runtime)
    assert client.post("/v1/streams/ripe/predict", json=event).json()["version"] == second


def test_no_champion_yet_is_503_with_retry_after(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(STREAM, service={**OPEN, "retry_after_seconds": 9})
    client = TestClient(create_app(runtime.settings, runtime=runtime))
    answer = client.post("/v1/streams/ripe/predict", json={"features": {"size": 1, "colour": 0}})
    assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "9")
    assert "'ripe' has no champion yet" in answer.json()["detail"]


def test_an_event_outside_the_schema_is_422(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(STREAM, service=OPEN)
    champion(runtime)
    client = TestClient(create_app(runtime.settings, runtime=runtime))
    answer = client.post("/v1/streams/ripe/predict", json={"features": {"size": 1, "colour": -1}})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "features"]
    assert "below its minimum 0" in answer.json()["detail"][0]["msg"]


def test_a_synchronous_prediction_is_counted_and_timed(make_runtime: MakeRuntime) -> None:
    from prometheus_client import REGISTRY

    runtime = make_runtime(STREAM, service=OPEN)
    champion(runtime)
    client = TestClient(create_app(runtime.settings, runtime=runtime))

    def served() -> tuple[float, float]:
        count = REGISTRY.get_sample_value(
            "meander_predictions_total", {"stream": "ripe", "role": "champion"}
        )
        timed = REGISTRY.get_sample_value(
            "meander_prediction_latency_seconds_count", {"stream": "ripe"}
        )
        return count or 0.0, timed or 0.0

    before = served()
    event = {"features": {"size": 5, "colour": 0}}
    assert client.post("/v1/streams/ripe/predict", json=event).status_code == 200
    after = served()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
