"""The prediction index on the embedded backends: what it writes, what lookup reads back."""

from __future__ import annotations

import fakeredis
import orjson
import pytest
import redis

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, Record, TopicPartition
from meander.component import drain
from meander.config import Settings, StreamConfig
from meander.events import Alert, DeadLetter, Prediction, encode
from meander.runtime import Runtime
from meander.services.index import GROUP, PredictionIndex, lookup, prediction_key
from meander.store import memory_store
from tests.conftest import MakeRuntime, ReadTopic

FRAUD = StreamConfig(name="fraud", task="binary", features={"amount": "numeric"})
CHURN = StreamConfig(name="churn", task="binary", features={"tenure": "numeric"}, partitions=2)
TTL = {"prediction_ttl_seconds": 600}


def answer(event_id: str, version: int = 1, role: str = "champion", **more: object) -> Prediction:
    return Prediction(
        event_id=event_id,
        model="fraud",
        version=version,
        role=role,  # type: ignore[arg-type]
        prediction=True,
        probabilities={"True": 0.8, "False": 0.2},
        latency_ms=0.5,
        **more,  # type: ignore[arg-type]
    )


def publish(runtime: Runtime, stream: str, *predictions: Prediction) -> None:
    records = [encode(topics.predictions(stream), p, source="/test") for p in predictions]
    runtime.bus.publish(records)


def test_each_version_is_a_field_of_the_events_hash_and_expires(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(FRAUD, CHURN, service=TTL)
    publish(runtime, "fraud", answer("e1"), answer("e1", 2, "challenger"), answer("e2"))
    publish(runtime, "churn", answer("e1", 4))
    index = PredictionIndex(runtime)
    assert drain([index]) == 4
    stored = runtime.store.hgetall(prediction_key("fraud", "e1"))
    assert sorted(stored) == [b"1", b"2"]
    assert orjson.loads(stored[b"2"]) == answer("e1", 2, "challenger").model_dump(mode="json")
    assert sorted(runtime.store.hgetall(prediction_key("churn", "e1"))) == [b"4"]
    for key in ("meander:fraud:prediction:e1", "meander:fraud:prediction:e2"):
        assert 0 < runtime.store.ttl(key) <= 600
    index.close()


def test_lookup_gives_the_champion_and_the_shadows_by_version(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(FRAUD)
    publish(
        runtime,
        "fraud",
        answer("e1", 3, "challenger"),
        answer("e1", 1),
        answer("e1", 2, "challenger"),
        answer("shadow-only", 2, "challenger"),
    )
    index = PredictionIndex(runtime)
    drain([index])
    found = lookup(runtime.store, "fraud", "e1")
    assert found is not None
    assert (found.event_id, found.stream, found.champion.version) == ("e1", "fraud", 1)
    assert [(p.version, p.role) for p in found.shadows] == [(2, "challenger"), (3, "challenger")]
    assert lookup(runtime.store, "fraud", "shadow-only") is None  # no champion's answer yet
    assert lookup(runtime.store, "fraud", "unknown") is None
    index.close()


def test_an_event_served_again_after_a_promotion_answers_with_the_latest_champion(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(FRAUD)
    publish(runtime, "fraud", answer("e1", 1), answer("e1", 2, "challenger"), answer("e1", 2))
    index = PredictionIndex(runtime)
    drain([index])
    found = lookup(runtime.store, "fraud", "e1")
    assert found is not None
    assert found.champion.version == 2 and found.champion.role == "champion"
    assert [(p.version, p.role) for p in found.shadows] == [(1, "champion")]
    index.close()


def test_malformed_messages_go_to_the_dead_letter_topic_and_the_rest_is_indexed(
    make_runtime: MakeRuntime, read_topic: ReadTopic
) -> None:
    runtime = make_runtime(FRAUD)
    topic = topics.predictions("fraud")
    alert = Alert(kind="data_drift", stream="fraud", severity="info", statistic="psi", value=1)
    runtime.bus.publish(
        [
            Record(topic, b"not a CloudEvent", partition=0),
            encode(topic, alert, source="/test"),
            encode(topic, answer("good"), source="/test"),
        ]
    )
    index = PredictionIndex(runtime)
    assert drain([index]) == 3
    assert lookup(runtime.store, "fraud", "good") is not None
    dead = [e.payload for e in read_topic(runtime, topics.DEADLETTER)]
    assert all(isinstance(letter, DeadLetter) for letter in dead)
    reasons = sorted(letter.reason for letter in dead)  # type: ignore[attr-defined]
    assert len(reasons) == 2
    assert "does not belong on fraud.predictions" in reasons[0]
    assert reasons[1].startswith("not JSON (") and "send a prediction" in reasons[1]
    assert (index.indexed, index.dead.count) == (1, 2)
    index.close()


def test_offsets_are_committed_only_after_the_redis_write() -> None:
    server = fakeredis.FakeServer()
    bus = MemoryBus(MemoryBroker())
    runtime = Runtime(Settings(streams=[FRAUD]), bus, memory_store(server))
    bus.create_topics(topics.layout([FRAUD]))
    publish(runtime, "fraud", *[answer(f"e{n}") for n in range(6)])
    index = PredictionIndex(runtime)
    server.connected = False
    with pytest.raises(redis.ConnectionError):
        index.step(0.1)
    with bus.subscribe([topics.predictions("fraud")], GROUP) as peer:
        partitions = [TopicPartition("fraud.predictions", p) for p in range(FRAUD.partitions)]
        assert all(peer.committed(p) is None for p in partitions)
    server.connected = True
    assert drain([index]) == 6  # the failed batch is read again, not skipped
    assert all(lookup(runtime.store, "fraud", f"e{n}") is not None for n in range(6))
    index.close()


def test_several_service_processes_index_each_prediction_once(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(FRAUD)
    first, second = PredictionIndex(runtime), PredictionIndex(runtime)
    publish(runtime, "fraud", *[answer(f"e{n}") for n in range(30)])
    drain([first, second])
    assert first.indexed + second.indexed == 30
    assert first.indexed > 0 and second.indexed > 0  # the group spread the partitions
    first.close()
    second.close()
