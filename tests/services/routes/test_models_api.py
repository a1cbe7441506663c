"""Streams, model versions, lineage, decisions, and manual promote and rollback over HTTP.

Unit tests on the embedded bus and store; the last test runs a real uvicorn server on real
Kafka and Redis with the notifier in the service process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

import fakeredis
import httpx2 as httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, TopicPartition
from meander.config import Settings, StreamConfig
from meander.consumers.loop import Loop
from meander.consumers.notifier.notifier import Notifier
from meander.consumers.trainer.trainer import Trainer
from meander.events import ModelEvent, Prediction, decode_batch
from meander.exceptions import BusUnavailable
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_model
from meander.models.unannounced import Unannounced
from meander.producers.labels import Publisher
from meander.producers.sample import Sample
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.services import create_app
from meander.services.announcer import Announcer
from meander.services.auth import new_key
from meander.services.background import _index as background_components
from meander.services.routes.decisions import Action, history
from meander.store import memory_store
from tests.conftest import every_message
from tests.services.conftest import Serve, problem_of

SPEC = "tree.HoeffdingTreeClassifier"
OPEN = {"anonymous_scopes": ["publish", "read", "admin"]}


def sea(name: str = "sea") -> StreamConfig:
    return synthetic("sea").stream_config(name, model=SPEC)


@dataclass
class World:
    runtime: Runtime
    registry: Registry
    client: TestClient

    def register(self, parent: int | None = None, **meta: Any) -> int:
        return self.registry.register(build_model(SPEC), spec=SPEC, parent=parent, **meta).version

    def model_events(self) -> list[ModelEvent]:
        partition = TopicPartition(topics.MODELS, 0)
        with self.runtime.bus.assign([partition]) as reader:
            envelopes, _ = decode_batch(reader.consume(10_000, 0.0))
        return [e.payload for e in envelopes if isinstance(e.payload, ModelEvent)]


def embedded(settings: Settings) -> Runtime:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout(settings.streams))
    return Runtime(settings, bus, memory_store(fakeredis.FakeServer()))


@pytest.fixture
def world() -> Iterator[World]:
    settings = Settings(streams=[sea()], service=OPEN)
    runtime = embedded(settings)
    registry = Registry(runtime.store, "sea", signer_for(settings))
    with TestClient(create_app(settings, runtime=runtime)) as client:
        yield World(runtime, registry, client)
    runtime.close()


def lineage_of_three(world: World) -> tuple[int, int, int]:
    """v1 (retired) <- v2 (champion) <- v3 (challenger)."""
    first = world.register(cause={"reason": "initial"})
    world.registry.promote(first, reason="initial")
    second = world.register(parent=first, training={"window": 500})
    world.registry.promote(second, metrics={"challenger_score": 0.9}, reason="won its race")
    third = world.register(parent=second)
    world.registry.add_challenger(third)
    return first, second, third


def test_streams_list_each_stream_with_its_serving_models(world: World) -> None:
    assert world.client.get("/v1/streams").json() == {
        "streams": [
            {"name": "sea", "task": "binary", "features": 3, "champion": None, "challengers": []}
        ]
    }
    _, second, third = lineage_of_three(world)
    [summary] = world.client.get("/v1/streams").json()["streams"]
    assert (summary["champion"], summary["challengers"]) == (second, [third])


def test_versions_carry_the_registry_metadata_and_the_learners_figures(world: World) -> None:
    first, second, third = lineage_of_three(world)
    report = {"n": 120, "accuracy": 0.91, "log_loss": None}
    world.runtime.store.set("meander:sea:metrics", orjson.dumps({"versions": {"2": report}}))
    answer = world.client.get("/v1/streams/sea/models").json()
    assert (answer["champion"], answer["challengers"]) == (second, [third])
    versions = answer["versions"]
    assert [(v["version"], v["status"], v["parent"]) for v in versions] == [
        (first, "retired", None),
        (second, "champion", first),
        (third, "challenger", second),
    ]
    champion = versions[1]
    assert champion["metrics"] == {"challenger_score": 0.9}
    assert champion["training"] == {"window": 500}
    assert champion["live"] == report
    assert champion["spec"] == SPEC and champion["river_version"].startswith("0.")
    assert champion["promoted_at"] is not None and versions[2]["promoted_at"] is None
    assert versions[0]["cause"] == {"reason": "initial"} and versions[0]["live"] is None


def test_one_version_and_its_lineage(world: World) -> None:
    first, second, third = lineage_of_three(world)
    one = world.client.get(f"/v1/streams/sea/models/{third}").json()
    assert (one["version"], one["status"], one["revision"]) == (third, "challenger", 1)
    lineage = world.client.get(f"/v1/streams/sea/models/{third}/lineage").json()
    assert [v["version"] for v in lineage["lineage"]] == [third, second, first]


@pytest.mark.parametrize("path", ["/models/9", "/models/9/lineage", "/models/9/promote"])
def test_an_unknown_version_is_404_naming_the_known_ones(world: World, path: str) -> None:
    lineage_of_three(world)
    url = f"/v1/streams/sea{path}"
    if path.endswith("promote"):
        response = world.client.post(url, json={"reason": "try"})
    else:
        response = world.client.get(url)
    assert response.status_code == 404
    known = "stream 'sea' has no model version 9; known versions: 1, 2, 3"
    assert problem_of(response)["msg"] == known


def test_malformed_paths_and_bodies_are_4xx(world: World) -> None:
    assert world.client.get("/v1/streams/nope/models").status_code == 404
    assert world.client.get("/v1/streams/sea/models/0").status_code == 422
    assert world.client.get("/v1/streams/sea/models/x").status_code == 422
    assert world.client.post("/v1/streams/sea/models/1/promote", json={}).status_code == 422
    rollback = world.client.post("/v1/streams/sea/rollback", json={"reason": "r", "to": 1})
    assert rollback.status_code == 422  # a misspelt field is refused, not ignored
    assert world.client.get("/v1/streams/sea/decisions?kind=won").status_code == 422
    assert world.client.get("/v1/streams/sea/decisions?before=latest").status_code == 422


def test_a_manual_promotion_changes_the_registry_and_is_announced(world: World) -> None:
    _, second, third = lineage_of_three(world)
    report = {"n": 800, "accuracy": 0.93}
    world.runtime.store.set("meander:sea:metrics", orjson.dumps({"versions": {"3": report}}))
    world.runtime.store.set("meander:sea:last_event", "e-41")
    decisions = {"stream": "sea", "action": "promoted"}
    before = REGISTRY.get_sample_value("meander_model_decisions_total", decisions) or 0.0
    response = world.client.post(f"/v1/streams/sea/models/{third}/promote", json={"reason": "AB"})
    assert response.status_code == 200
    assert REGISTRY.get_sample_value("meander_model_decisions_total", decisions) == before + 1
    answer = response.json()
    assert (answer["kind"], answer["version"], answer["previous_version"]) == (
        "promoted",
        third,
        second,
    )
    assert (answer["manual"], answer["by"], answer["reason"]) == (True, "anonymous", "AB")
    assert answer["evidence"] == {"manual": True, "by": "anonymous", "metrics": {"3": report}}
    heads = world.registry.heads()
    assert (heads.champion, heads.challengers) == (third, ())
    promoted, retired = world.registry.get(third), world.registry.get(second)
    assert promoted.metrics == {"n": 800.0, "accuracy": 0.93}
    assert promoted.reason == "manual promotion by 'anonymous': AB"
    assert retired.status == "retired"
    [event] = world.model_events()
    assert (event.action, event.version, event.previous_version) == ("promoted", third, second)
    assert (event.evidence["by"], event.at_event, event.stream) == ("anonymous", "e-41", "sea")


def test_promoting_the_champion_is_a_conflict(world: World) -> None:
    _, second, _ = lineage_of_three(world)
    response = world.client.post(f"/v1/streams/sea/models/{second}/promote", json={"reason": "x"})
    assert response.status_code == 409
    assert problem_of(response) == {
        "loc": ["path", "version"],
        "msg": "v2 is already the champion of 'sea'; nothing to promote",
        "type": "conflict",
    }
    assert world.model_events() == []


def test_rollback_goes_to_the_previous_champion_by_default(world: World) -> None:
    first, second, third = lineage_of_three(world)
    world.client.post(f"/v1/streams/sea/models/{third}/promote", json={"reason": "try v3"})
    answer = world.client.post("/v1/streams/sea/rollback", json={"reason": "v3 errs"}).json()
    assert (answer["kind"], answer["version"], answer["previous_version"]) == (
        "rolled_back",
        second,
        third,
    )
    assert world.registry.champion() == second
    assert world.registry.get(third).status == "rolled_back"
    # Again: the latest retired champion before v2 is v1 (v3 was rolled back, not retired).
    again = world.client.post("/v1/streams/sea/rollback", json={"reason": "further"}).json()
    assert (again["version"], again["previous_version"]) == (first, second)
    actions = [(e.action, e.version, e.previous_version) for e in world.model_events()]
    assert actions == [
        ("promoted", third, second),
        ("rolled_back", second, third),
        ("rolled_back", first, second),
    ]


def test_rollback_to_a_named_version(world: World) -> None:
    first, second, _ = lineage_of_three(world)
    body = {"reason": "back to the start", "to_version": first}
    answer = world.client.post("/v1/streams/sea/rollback", json=body).json()
    assert (answer["version"], answer["previous_version"]) == (first, second)
    assert world.registry.champion() == first


@pytest.mark.parametrize(
    ("setup", "body", "detail"),
    [
        ("none", {}, "stream 'sea' has no champion to roll back; promote a version"),
        ("one", {}, "stream 'sea' has no previous champion to roll back to (no retired version)"),
        ("three", {"to_version": 2}, "v2 is already the champion of 'sea'"),
        ("three", {"to_version": 3}, "v3 of 'sea' was never the champion, so there is nothing"),
    ],
)
def test_impossible_rollbacks_are_conflicts_that_say_why(
    world: World, setup: str, body: dict[str, int], detail: str
) -> None:
    if setup == "one":
        world.registry.promote(world.register())
    elif setup == "three":
        lineage_of_three(world)
    response = world.client.post("/v1/streams/sea/rollback", json={"reason": "r"} | body)
    assert response.status_code == 409
    assert problem_of(response)["msg"].startswith(detail)
    assert world.model_events() == []


def test_rollback_to_an_unknown_version_is_404(world: World) -> None:
    lineage_of_three(world)
    response = world.client.post("/v1/streams/sea/rollback", json={"reason": "r", "to_version": 7})
    assert response.status_code == 404


def test_decisions_come_from_the_notifiers_log_filtered_and_newest_first(world: World) -> None:
    _, second, third = lineage_of_three(world)
    other = Registry(world.runtime.store, "other", world.registry.signer)
    other.promote(other.register(build_model(SPEC), spec=SPEC).version)
    world.client.post(f"/v1/streams/sea/models/{third}/promote", json={"reason": "AB"})
    world.client.post("/v1/streams/sea/rollback", json={"reason": "worse"})
    notifier = Notifier(world.runtime, group="test-notifier")
    while notifier.step(0.0):
        pass
    notifier.close()
    decisions = world.client.get("/v1/streams/sea/decisions").json()["decisions"]
    assert [(d["kind"], d["version"]) for d in decisions] == [
        ("rolled_back", second),
        ("promoted", third),
    ]
    assert all(d["manual"] and d["source"] == "/meander/service" for d in decisions)
    assert decisions[0]["position"] > decisions[1]["position"]
    only: list[Action] = ["promoted"]
    filtered = world.client.get("/v1/streams/sea/decisions", params={"kind": only}).json()
    assert [d["kind"] for d in filtered["decisions"]] == ["promoted"]
    newest = world.client.get("/v1/streams/sea/decisions?limit=1").json()["decisions"]
    older = world.client.get(f"/v1/streams/sea/decisions?before={newest[0]['position']}").json()
    assert [d["kind"] for d in older["decisions"]] == ["promoted"]


def test_a_position_redis_cannot_hold_is_a_422_not_a_503(world: World) -> None:
    # Found by schemathesis: 20 digits fit the pattern but not Redis's 64-bit numbers, and
    # Redis's refusal was answered 503 "send the request again later".
    for before in ("18446744073709551616-0", "0-99999999999999999999"):
        response = world.client.get(f"/v1/streams/sea/decisions?before={before}")
        assert response.status_code == 422, response.text
        assert problem_of(response) == {
            "loc": ["query", "before"],
            "msg": f"{before!r} is no position: each of its two numbers is at most "
            "18446744073709551615",
            "type": "value_error",
        }
    largest = world.client.get("/v1/streams/sea/decisions?before=18446744073709551615-0")
    assert largest.status_code == 200


def test_nothing_is_older_than_the_first_position(redis_url: str) -> None:
    # Real Redis refuses "(0-0" as the end of a range (fakeredis answers []): it was a 503.
    store = redis.Redis.from_url(redis_url)
    for before in ("0-0", "00-000"):
        assert history(store, "sea", kinds=(), limit=10, before=before) == []
    store.close()


def test_the_decision_kinds_are_the_model_event_actions() -> None:
    assert get_args(Action) == get_args(ModelEvent.model_fields["action"].annotation)


def test_promote_and_rollback_need_the_admin_scope() -> None:
    reader, reader_digest = new_key()
    admin, admin_digest = new_key()
    keys = [
        {"name": "viewer", "digest": reader_digest, "scopes": ["read"]},
        {"name": "ops", "digest": admin_digest, "scopes": ["admin"]},
    ]
    settings = Settings(streams=[sea()], service={"api_keys": keys})
    runtime = embedded(settings)
    registry = Registry(runtime.store, "sea", signer_for(settings))
    registry.promote(registry.register(build_model(SPEC), spec=SPEC).version)
    second = registry.register(build_model(SPEC), spec=SPEC).version
    path = f"/v1/streams/sea/models/{second}/promote"
    with TestClient(create_app(settings, runtime=runtime)) as client:
        assert client.get("/v1/streams").status_code == 401
        assert client.get("/v1/streams", headers={"X-API-Key": reader}).status_code == 200
        denied = client.post(path, json={"reason": "r"}, headers={"X-API-Key": reader})
        assert denied.status_code == 403
        done = client.post(path, json={"reason": "r"}, headers={"X-API-Key": admin})
        assert (done.status_code, done.json()["by"]) == (200, "ops")
    runtime.close()


def promote_and_roll_back_with_the_broker_down(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int, list[str]]:
    """The second and third of a lineage of three, and the ids of a promotion of the third and
    the rollback after it, both made while no broker took their announcement."""
    _, second, third = lineage_of_three(world)

    def broker_down(*_: object, **__: object) -> None:
        raise BusUnavailable("no Kafka broker answered")

    monkeypatch.setattr(world.runtime.bus, "publish", broker_down)
    promoted = world.client.post(f"/v1/streams/sea/models/{third}/promote", json={"reason": "r"})
    rolled_back = world.client.post("/v1/streams/sea/rollback", json={"reason": "undo"})
    # Made, and said so: the registry changed, the announcement waits for the broker.
    assert (promoted.status_code, rolled_back.status_code) == (202, 202)
    assert world.registry.champion() == second
    assert world.model_events() == []
    monkeypatch.undo()  # the broker is back
    return second, third, [promoted.json()["id"], rolled_back.json()["id"]]


def assert_announced_in_order(world: World, second: int, third: int, ids: list[str]) -> None:
    made = [(e.action, e.version, e.previous_version) for e in world.model_events()]
    assert made == [("promoted", third, second), ("rolled_back", second, third)]
    announced = [
        envelope.id for envelope in decode_batch(every_message(world.runtime, topics.MODELS))[0]
    ]
    assert announced == ids


def test_manual_decisions_the_broker_did_not_take_are_announced_by_the_trainer_in_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    second, third, ids = promote_and_roll_back_with_the_broker_down(world, monkeypatch)

    trainer = Trainer(world.runtime, world.runtime.settings.streams[0])
    trainer.step()
    trainer.step()
    trainer.close()

    assert_announced_in_order(world, second, third, ids)


def test_manual_decisions_the_broker_did_not_take_are_announced_by_the_service_without_a_trainer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    second, third, ids = promote_and_roll_back_with_the_broker_down(world, monkeypatch)
    # No trainer runs.

    # A running trainer has the grace period to announce them first.
    assert Announcer(world.runtime, grace_seconds=3_600).step() == 0
    assert world.model_events() == []
    # Every service process runs one; past the grace, it announces them, in the order made.
    assert any(isinstance(c, Announcer) for c in background_components(world.runtime))
    assert Announcer(world.runtime, grace_seconds=0).step() == 2

    assert_announced_in_order(world, second, third, ids)
    assert world.registry.unannounced.pending() == []


def test_a_manual_decision_announced_is_a_200_though_redis_then_fails_to_drop_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    *_, third = lineage_of_three(world)

    def redis_gone(*_: object, **__: object) -> None:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(Unannounced, "done", redis_gone)
    answer = world.client.post(f"/v1/streams/sea/models/{third}/promote", json={"reason": "r"})
    monkeypatch.undo()

    # Made and announced: a 503 "send it again" would only meet a 409 (it is the champion).
    assert answer.status_code == 200 and answer.json()["version"] == third
    assert [(e.action, e.version) for e in world.model_events()] == [("promoted", third)]
    assert len(world.registry.unannounced.pending()) == 1  # the trainer drops it once announced


@pytest.mark.integration
def test_manual_promote_then_rollback_are_recorded_on_kafka_and_redis(
    serve: Serve, kafka_bootstrap: str, redis_url: str
) -> None:
    name = f"sea{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key="a signing key for the models test, 32+",
        streams=[sea(name)],
        service=OPEN | {"components": ["notifier"]},
    )
    with Runtime.open(settings) as runtime:
        registry = Registry(runtime.store, name, signer_for(settings))
        first = registry.register(build_model(SPEC), spec=SPEC).version
        registry.promote(first, reason="initial")
        second = registry.register(build_model(SPEC), spec=SPEC, parent=first).version
    base = serve(settings)
    with httpx.Client(base_url=base, timeout=30) as client:
        promoted = client.post(f"/v1/streams/{name}/models/{second}/promote", json={"reason": "AB"})
        assert promoted.status_code == 200, promoted.text
        rolled = client.post(f"/v1/streams/{name}/rollback", json={"reason": "worse"})
        assert rolled.status_code == 200, rolled.text
        heads = client.get("/v1/streams").json()["streams"]
        assert [s["champion"] for s in heads if s["name"] == name] == [first]
        decisions: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while len(decisions) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            decisions = client.get(f"/v1/streams/{name}/decisions").json()["decisions"]
    assert [(d["kind"], d["version"], d["previous_version"]) for d in decisions] == [
        ("rolled_back", first, second),
        ("promoted", second, first),
    ]
    assert [d["id"] for d in decisions] == [rolled.json()["id"], promoted.json()["id"]]
    assert all(d["manual"] and d["by"] == "anonymous" for d in decisions)


def test_the_running_loop_follows_a_manual_promotion_and_rollback(world: World) -> None:
    stream = world.runtime.settings.streams[0]
    loop = Loop(world.runtime, stream, monitor=False)  # registers v1 as the champion
    publisher = Publisher("sea", label_delay=20, seed=5)
    samples = list(synthetic("sea", seed=5).samples(1_200))

    def feed(start: int, stop: int) -> None:
        for at in range(start, stop, 100):
            loop.feed(*publisher.push(samples[at : at + 100]))

    feed(0, 400)
    other = "preprocessing.StandardScaler | linear_model.LogisticRegression"
    second = world.registry.register(build_model(other), spec=other, parent=1).version
    world.client.post(f"/v1/streams/sea/models/{second}/promote", json={"reason": "try it"})
    feed(400, 800)
    state = loop.learner.state
    assert state is not None
    assert (state.champion, sorted(state.models)) == (second, [second])
    assert state.metrics[second].n > 300  # it learned and was judged on the labels since
    assert world.registry.get(second).revision > 1  # and shared what it learned
    served = served_versions(world, samples[400:800])
    assert served == {second}
    world.client.post("/v1/streams/sea/rollback", json={"reason": "back"})
    feed(800, 1_200)
    assert (state.champion, sorted(state.models)) == (1, [1])
    assert served_versions(world, samples[800:]) == {1}
    loop.close()


def served_versions(world: World, samples: list[Sample]) -> set[int]:
    """The champion versions that served ``samples``."""
    ids = {sample.event_id for sample in samples}
    topic = topics.predictions("sea")
    partitions = [TopicPartition(topic, p) for p in range(world.runtime.bus.partitions(topic))]
    with world.runtime.bus.assign(partitions) as reader:
        envelopes, _ = decode_batch(reader.consume(100_000, 0.0))
    return {
        e.payload.version
        for e in envelopes
        if isinstance(e.payload, Prediction) and e.payload.event_id in ids
    }
