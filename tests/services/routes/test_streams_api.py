"""A stream's schema, and the live profile the monitor keeps of its features, over HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import fakeredis
import pytest
from fastapi.testclient import TestClient

from meander import topics
from meander.bus import MemoryBroker, MemoryBus
from meander.config import Settings, StreamConfig
from meander.consumers.monitor.monitor import Monitor
from meander.events import FeatureEvent, encode
from meander.runtime import Runtime
from meander.services import create_app
from meander.store import memory_store
from tests.services.conftest import problem_of

WINDOW = 200


def loans() -> StreamConfig:
    return StreamConfig(
        name="loans",
        task="binary",
        features={
            "amount": {"type": "numeric", "minimum": 0, "maximum": 10_000},
            "income": {"type": "numeric", "required": False},
            "purpose": {"type": "categorical", "categories": ["car", "home", "study"]},
            "repeat": "boolean",
        },
        partitions=1,
        drift={"data_window": WINDOW},
    )


@dataclass
class World:
    runtime: Runtime
    client: TestClient


@pytest.fixture
def world() -> Iterator[World]:
    settings = Settings(streams=[loans()], service={"anonymous_scopes": ["read"]})
    bus = MemoryBus(MemoryBroker())
    bus.create_topics(topics.layout(settings.streams))
    runtime = Runtime(settings, bus, memory_store(fakeredis.FakeServer()))
    with TestClient(create_app(settings, runtime=runtime)) as client:
        yield World(runtime, client)
    runtime.close()


def monitor_events(world: World, count: int) -> None:
    rng = random.Random(4)
    events = []
    for i in range(count):
        features = {
            "amount": rng.uniform(0, 1_000),
            "purpose": rng.choices(["car", "home", "study"], weights=[6, 3, 1])[0],
            "repeat": rng.random() < 0.25,
        }
        if i % 10:  # every tenth event has no income
            features["income"] = rng.gauss(3_000, 500)
        events.append(FeatureEvent(id=f"e{i}", features=features))
    world.runtime.bus.publish(
        [encode(topics.events("loans"), e, source="/test", subject="loans") for e in events]
    )
    monitor = Monitor(world.runtime, loans())
    while monitor.step():
        pass
    monitor.close()


def test_the_schema_lists_each_feature_with_its_checks(world: World) -> None:
    answer = world.client.get("/v1/streams/loans/schema").json()
    assert (answer["stream"], answer["task"]) == ("loans", "binary")
    # No model configured: the default linear model, categories one-hot encoded; income is
    # optional, so the numbers are what is left once the category is discarded.
    assert answer["model"] == (
        "(compose.Discard('purpose') | preprocessing.StandardScaler)"
        " + (compose.Select('purpose') | preprocessing.OneHotEncoder(drop_zeros=True))"
        " | linear_model.LogisticRegression"
    )
    features = answer["features"]
    assert features["amount"] == {
        "type": "numeric",
        "required": True,
        "minimum": 0.0,
        "maximum": 10_000.0,
        "categories": None,
    }
    assert features["income"]["required"] is False
    assert features["purpose"]["categories"] == ["car", "home", "study"]
    assert features["repeat"]["type"] == "boolean"


def test_no_profile_before_the_monitor_closed_a_window(world: World) -> None:
    monitor_events(world, WINDOW - 1)
    response = world.client.get("/v1/streams/loans/profile")
    assert response.status_code == 404
    assert problem_of(response)["msg"].startswith(
        "the monitor has not profiled stream 'loans' yet: it writes a profile each time it has "
        "seen drift.data_window = 200 more events"
    )


def test_unknown_streams_are_404(world: World) -> None:
    for path in ("schema", "profile"):
        response = world.client.get(f"/v1/streams/cars/{path}")
        assert response.status_code == 404
        assert problem_of(response)["msg"] == "unknown stream 'cars'; configured streams: loans"


def test_the_profile_describes_every_feature_since_the_monitor_started(world: World) -> None:
    monitor_events(world, 1_000)
    answer = world.client.get("/v1/streams/loans/profile").json()
    assert (answer["events"], answer["windows"], answer["window_size"]) == (1_000, 5, WINDOW)
    assert (answer["at_event"], answer["violation_rate"]) == ("e999", 0.0)
    assert answer["since"] <= answer["updated_at"]
    amount = answer["features"]["amount"]
    assert (amount["type"], amount["count"], amount["missing"]) == ("numeric", 1_000, 0)
    assert amount["mean"] == pytest.approx(500, abs=40)
    assert amount["variance"] == pytest.approx(1_000**2 / 12, rel=0.15)
    assert 0 <= amount["min"] < amount["max"] <= 1_000
    quantiles = amount["quantiles"]
    assert list(quantiles) == ["p05", "p25", "p50", "p75", "p95"]
    assert quantiles["p05"] < quantiles["p25"] < quantiles["p50"] < quantiles["p75"]
    assert quantiles["p50"] == pytest.approx(500, abs=80)
    assert amount["top"] is None
    assert amount["window"]["count"] == WINDOW
    assert amount["window"]["drift"]["statistic"] == "ks"
    income = answer["features"]["income"]
    assert (income["count"], income["missing"], income["missing_rate"]) == (900, 100, 0.1)
    purpose = answer["features"]["purpose"]
    assert (purpose["count"], purpose["quantiles"], purpose["mean"]) == (1_000, None, None)
    assert [c["value"] for c in purpose["top"]] == ["car", "home", "study"]
    assert sum(c["count"] for c in purpose["top"]) == 1_000
    assert purpose["top"][0]["share"] == pytest.approx(0.6, abs=0.05)
    assert sum(purpose["window"]["categories"].values()) == WINDOW
    assert {c["value"] for c in answer["features"]["repeat"]["top"]} == {"true", "false"}
