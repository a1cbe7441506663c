"""The monitor finds data drift, missing values and schema violations, once per change.

Streams are seeded, so each test asserts the exact window (``at_event``) an alert is raised at.
One partition per stream keeps the monitor's windows aligned with the event indices. The unit
tests run on the embedded bus and store; the last test runs on real Kafka and real Redis.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import fakeredis
import orjson
import pytest
from prometheus_client import REGISTRY

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, Message, Record, TopicPartition
from meander.config import Settings, StreamConfig
from meander.consumers import assembly
from meander.consumers.monitor.monitor import Monitor
from meander.consumers.monitor.profile import ks_critical_value
from meander.events import Alert, FeatureEvent, Feedback, decode, decode_batch, encode
from meander.exceptions import ConfigError
from meander.runtime import Runtime
from meander.store import memory_store

WINDOW = 500
Change = Callable[[int, dict[str, Any], random.Random], None]


def stream_config(name: str = "cars", **drift: Any) -> StreamConfig:
    features: dict[str, Any] = {f"x{k}": "numeric" for k in range(6)}
    features["x1"] = {"type": "numeric", "required": False}
    features |= {"colour": "categorical", "doors": "categorical", "vip": "boolean"}
    return StreamConfig(
        name=name,
        task="binary",
        features=features,
        partitions=1,
        drift={"data_window": WINDOW, "data_detector": ""} | drift,
    )


def rows(n: int, seed: int, change: Change | None = None) -> list[dict[str, Any]]:
    """``n`` seeded feature dicts; ``change(i, row, rng)`` alters row ``i`` in place."""
    rng = random.Random(seed)
    made = []
    for i in range(n):
        row: dict[str, Any] = {f"x{k}": rng.gauss(0.0, 1.0) for k in range(6)}
        row["colour"] = rng.choices(["red", "green", "blue"], weights=[5, 3, 2])[0]
        row["doors"] = rng.choice([2, 3, 4, 5])
        row["vip"] = rng.random() < 0.2
        if change is not None:
            change(i, row, rng)
        made.append(row)
    return made


def publish(runtime: Runtime, stream: StreamConfig, features: list[dict[str, Any]]) -> None:
    runtime.bus.publish(
        [
            encode(
                topics.events(stream.name),
                FeatureEvent(id=f"e{i}", features=row),
                source="/test",
                subject=stream.name,
            )
            for i, row in enumerate(features)
        ]
    )


def run(stream: StreamConfig, features: list[dict[str, Any]]) -> tuple[Runtime, list[Alert]]:
    """Publish ``features`` on a fresh embedded runtime, monitor them all, return the alerts."""
    runtime = Runtime(Settings(), MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
    runtime.bus.create_topics(topics.layout([stream]))
    publish(runtime, stream, features)
    monitor = Monitor(runtime, stream)
    while monitor.step():
        pass
    return runtime, alerts(runtime)


def alerts(runtime: Runtime) -> list[Alert]:
    with runtime.bus.assign([TopicPartition(topics.ALERTS, 0)]) as reader:
        found = [decode(message).payload for message in reader.consume(10_000, timeout=0.1)]
    assert all(isinstance(alert, Alert) for alert in found)
    return found  # type: ignore[return-value]


def summary(found: list[Alert]) -> list[tuple[str, str | None, str, str | None]]:
    return [(a.kind, a.feature, a.statistic, a.at_event) for a in found]


def shift(feature: str, by: float, start: int) -> Change:
    def change(i: int, row: dict[str, Any], rng: random.Random) -> None:
        if i >= start:
            row[feature] += by

    return change


def test_a_mean_shift_raises_one_ks_alert_in_the_window_it_starts() -> None:
    _, found = run(stream_config(), rows(6_000, seed=1, change=shift("x2", 1.0, start=2_000)))
    assert summary(found) == [("data_drift", "x2", "ks", "e2499")]
    alert = found[0]
    assert alert.threshold == pytest.approx(ks_critical_value(WINDOW, WINDOW, 1e-4))
    assert alert.threshold is not None and alert.value > alert.threshold
    assert (alert.severity, alert.window, alert.stream) == ("warning", WINDOW, "cars")
    assert alert.message.startswith("feature 'x2' changed distribution: KS 0.")


def test_a_change_inside_a_window_raises_one_alert_that_says_where_it_began() -> None:
    # The drifted window holds 100 values from before the change: were they kept in the new
    # reference, the next window would differ from it too, and raise a second alert.
    _, found = run(stream_config(), rows(6_000, seed=1, change=shift("x2", 1.0, start=2_100)))
    assert summary(found) == [("data_drift", "x2", "ks", "e2499")]
    assert "changed distribution from around event e2100: KS" in found[0].message


def test_a_large_shift_is_critical() -> None:
    _, found = run(stream_config(), rows(3_000, seed=1, change=shift("x0", 3.0, start=1_500)))
    assert [(a.statistic, a.severity, a.at_event) for a in found] == [("ks", "critical", "e1999")]


def test_the_river_detector_reports_the_event_it_fired_at() -> None:
    config = stream_config(data_detector="drift.ADWIN")
    _, found = run(config, rows(6_000, seed=1, change=shift("x2", 1.0, start=2_000)))
    assert summary(found) == [
        ("data_drift", "x2", "adwin", "e2047"),
        ("data_drift", "x2", "ks", "e2499"),
    ]
    adwin = found[0]
    assert adwin.threshold is None
    assert adwin.message.startswith("feature 'x2': ADWIN detected a change; the mean it now")
    assert adwin.window is not None and 0 < adwin.window <= 2_048


def test_a_detector_without_an_estimate_reports_the_value_it_fired_at() -> None:
    def step_up(i: int, row: dict[str, Any], rng: random.Random) -> None:
        row["x2"] = 5.0 if i >= 2_000 else 0.0

    config = stream_config(data_detector="drift.PageHinkley")
    _, found = run(config, rows(4_000, seed=1, change=step_up))
    [first, *_] = [a for a in found if a.feature == "x2"]
    assert (first.statistic, first.at_event, first.value, first.window) == (
        "pagehinkley",
        "e2010",
        5.0,
        2_011,
    )
    assert first.message == "feature 'x2': PageHinkley detected a change; at the value 5"


def some_become_blue(i: int, row: dict[str, Any], rng: random.Random) -> None:
    if i >= 3_000 and rng.random() < 0.3:
        row["colour"] = "blue"


def more_vips(i: int, row: dict[str, Any], rng: random.Random) -> None:
    if i >= 3_000:
        row["vip"] = rng.random() < 0.6


def six_doors(i: int, row: dict[str, Any], rng: random.Random) -> None:
    if i >= 3_000:
        row["doors"] = 6  # a category the reference never saw


@pytest.mark.parametrize(
    ("feature", "change", "severity"),
    [
        ("colour", some_become_blue, "warning"),
        ("vip", more_vips, "critical"),
        ("doors", six_doors, "critical"),
    ],
)
def test_a_category_shift_raises_one_psi_alert(feature: str, change: Change, severity: str) -> None:
    _, found = run(stream_config(), rows(6_000, seed=2, change=change))
    assert summary(found) == [("data_drift", feature, "psi", "e3499")]
    assert found[0].threshold == 0.2
    assert found[0].value > 0.2
    assert found[0].severity == severity
    assert "moved most" in found[0].message


def test_a_category_too_long_to_quote_whole_is_shortened_in_its_alert() -> None:
    """The alert quoted the category that moved most whole: one as long as an event may be
    made the alert too large to publish, and the monitor's step failed on it for good."""
    long = "b" * 19_500  # an event holding it fits in 20,000 bytes; an alert quoting it did not

    def some_become_long(i: int, row: dict[str, Any], rng: random.Random) -> None:
        if i >= 3_000 and rng.random() < 0.3:
            row["colour"] = long

    stream = stream_config()
    bus = MemoryBus(MemoryBroker(), max_message_bytes=20_000)
    runtime = Runtime(Settings(), bus, memory_store(fakeredis.FakeServer()))
    runtime.bus.create_topics(topics.layout([stream]))
    publish(runtime, stream, rows(6_000, seed=2, change=some_become_long))
    monitor = Monitor(runtime, stream)
    while monitor.step():
        pass

    (alert,) = alerts(runtime)
    assert (alert.feature, alert.statistic) == ("colour", "psi")
    assert "'bbbb" in alert.message and len(alert.message) < 1_000


def test_a_stationary_stream_raises_nothing_over_many_windows() -> None:
    runtime, found = run(stream_config(data_detector="drift.ADWIN"), rows(30_000, seed=3))
    assert found == []
    profile = orjson.loads(runtime.store.get("meander:cars:profile") or b"")
    assert (profile["count"], profile["windows"]) == (30_000, 60)


def test_missing_values_raise_one_alert_while_they_last() -> None:
    def drop(i: int, row: dict[str, Any], rng: random.Random) -> None:
        if i >= 1_500 and rng.random() < 0.3:
            if rng.random() < 0.5:
                del row["x1"]
            else:
                row["x1"] = None

    _, found = run(stream_config(), rows(5_000, seed=4, change=drop))
    assert summary(found) == [("missing_values", "x1", "missing_rate", "e1999")]
    assert found[0].value == pytest.approx(0.3, abs=0.05)
    assert (found[0].threshold, found[0].severity, found[0].window) == (0.05, "critical", WINDOW)


def test_schema_violations_raise_one_alert_with_the_first_reason() -> None:
    def break_some(i: int, row: dict[str, Any], rng: random.Random) -> None:
        if i >= 2_000 and rng.random() < 0.05:
            row["x0"] = "abc"

    runtime, found = run(stream_config(), rows(4_000, seed=5, change=break_some))
    assert summary(found) == [("schema_violations", None, "violation_rate", "e2499")]
    alert = found[0]
    assert alert.value == pytest.approx(0.05, abs=0.02)
    assert (alert.threshold, alert.window) == (0.01, WINDOW)
    assert "feature 'x0' must be a number, got 'abc' (str)" in alert.message
    profile = orjson.loads(runtime.store.get("meander:cars:profile") or b"")
    assert profile["violation_rate"] > 0.01
    assert profile["features"]["x0"]["count"] < WINDOW  # bad events stay out of the statistics


def test_bad_messages_count_as_violations_and_do_not_stop_the_monitor() -> None:
    config = stream_config(data_window=100)
    runtime = Runtime(Settings(), MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
    runtime.bus.create_topics(topics.layout([config]))
    events_topic = topics.events(config.name)
    publish(runtime, config, rows(60, seed=6))
    runtime.bus.publish(
        [
            Record(events_topic, b"not a CloudEvent"),
            encode(events_topic, Feedback(event_id="e1", label=True), source="/test"),
        ]
    )
    publish(runtime, config, rows(38, seed=7))
    monitor = Monitor(runtime, config)
    assert monitor.step() == 100
    [alert] = alerts(runtime)
    assert (alert.kind, alert.value, alert.window) == ("schema_violations", 0.02, 100)
    assert "not a readable event" in alert.message
    profile = orjson.loads(runtime.store.get("meander:cars:profile") or b"")
    assert (profile["count"], profile["violation_rate"]) == (100, 0.02)
    assert profile["features"]["colour"]["count"] == 98


def test_the_alert_is_a_cloudevent_that_round_trips() -> None:
    runtime, _ = run(stream_config(), rows(2_000, seed=1, change=shift("x2", 2.0, start=1_000)))
    with runtime.bus.assign([TopicPartition(topics.ALERTS, 0)]) as reader:
        [message] = reader.consume(10, timeout=0.1)
    envelope = decode(message)
    assert (envelope.source, envelope.subject) == ("/meander/monitor", "cars")
    assert message.key == b"cars"
    record = encode(topics.ALERTS, envelope.payload, source="/meander/monitor")
    again = decode(Message(record.topic, 0, 0, record.key, record.value, record.headers, 0))
    assert again.payload == envelope.payload


def test_the_profile_describes_the_last_window() -> None:
    runtime, _ = run(stream_config(), rows(1_000, seed=8))
    profile = orjson.loads(runtime.store.get("meander:cars:profile") or b"")
    assert (profile["stream"], profile["count"], profile["window"]) == ("cars", 1_000, WINDOW)
    assert profile["at_event"] == "e999"
    x0 = profile["features"]["x0"]
    assert x0["type"] == "numeric"
    assert x0["mean"] == pytest.approx(0.0, abs=0.15)
    assert x0["std"] == pytest.approx(1.0, abs=0.1)
    assert x0["min"] < x0["mean"] < x0["max"]
    assert x0["drift"]["statistic"] == "ks"
    assert x0["drift"]["value"] < x0["drift"]["threshold"]
    assert set(profile["features"]["doors"]["categories"]) == {"2", "3", "4", "5"}
    assert set(profile["features"]["vip"]["categories"]) == {"true", "false"}
    assert profile["features"]["vip"]["missing_rate"] == 0.0


def test_the_profile_also_describes_every_window_since_the_start() -> None:
    runtime, _ = run(stream_config(), rows(1_500, seed=8, change=shift("x0", 2.0, start=1_000)))
    profile = orjson.loads(runtime.store.get("meander:cars:profile") or b"")
    assert profile["since"] <= profile["updated_at"]
    x0 = profile["features"]["x0"]
    assert (x0["count"], x0["overall"]["count"], x0["overall"]["missing"]) == (WINDOW, 1_500, 0)
    assert x0["mean"] == pytest.approx(2.0, abs=0.15)  # the last window only
    assert x0["overall"]["mean"] == pytest.approx(2.0 / 3, abs=0.15)
    assert x0["overall"]["variance"] == pytest.approx(1.0 + 8 / 9, abs=0.25)
    quantiles = x0["overall"]["quantiles"]
    assert quantiles["p05"] < quantiles["p25"] < quantiles["p50"] < quantiles["p75"]
    assert quantiles["p75"] < quantiles["p95"]
    vip = profile["features"]["vip"]["overall"]
    assert (vip["count"], set(vip["top"])) == (1_500, {"true", "false"})


def test_offsets_are_committed_after_the_alerts_are_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = stream_config(data_window=100)
    runtime = Runtime(Settings(), MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
    runtime.bus.create_topics(topics.layout([config]))
    publish(runtime, config, rows(100, seed=9, change=lambda i, row, rng: row.update(x0="bad")))
    monitor = Monitor(runtime, config)
    publish_for_real = runtime.bus.publish

    def refuse(records: Any, timeout: float | None = None) -> Any:
        raise ConnectionError("broker gone")

    monkeypatch.setattr(runtime.bus, "publish", refuse)
    with pytest.raises(ConnectionError):
        monitor.step()
    partition = TopicPartition(topics.events(config.name), 0)
    assert monitor.consumer.committed(partition) is None
    monkeypatch.setattr(runtime.bus, "publish", publish_for_real)
    assert monitor.step() == 0  # nothing new to read, but the held-back alert goes out
    assert [a.kind for a in alerts(runtime)] == ["schema_violations"]
    assert monitor.consumer.committed(partition) == 100


def test_a_binary_detector_is_refused_with_the_alternatives() -> None:
    config = stream_config(data_detector="drift.binary.DDM")
    runtime = Runtime(Settings(), MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
    runtime.bus.create_topics(topics.layout([config]))
    with pytest.raises(ConfigError, match=r"use drift\.ADWIN"):
        Monitor(runtime, config)


def test_run_monitor_runs_one_monitor_per_stream(
    monkeypatch: pytest.MonkeyPatch, logging_kept: None
) -> None:
    started: list[str] = []
    stop = threading.Event()  # set once both are built: run() waits for backends while unset
    original = Monitor.__init__

    def record(self: Monitor, runtime: Runtime, stream: StreamConfig, **kwargs: Any) -> None:
        started.append(stream.name)
        original(self, runtime, stream, **kwargs)
        if len(started) == len(streams):
            stop.set()

    monkeypatch.setattr(Monitor, "__init__", record)
    monkeypatch.setattr(assembly, "stop_on_signals", lambda: stop)
    name = f"main{uuid.uuid4().hex[:8]}"
    streams = [stream_config(f"{name}a"), stream_config(f"{name}b")]
    settings = Settings(streams=streams, metrics_port=0)  # the port is not under test
    assembly.run(["monitor"], settings)
    assert started == [f"{name}a", f"{name}b"]


@pytest.mark.integration
def test_on_kafka_and_redis(kafka_bootstrap: str, redis_url: str) -> None:
    config = stream_config(f"monitor{uuid.uuid4().hex[:8]}")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, streams=[config])
    with Runtime.open(settings) as runtime:
        publish(runtime, config, rows(1_500, seed=1, change=shift("x3", 1.5, start=1_000)))
        monitor = Monitor(runtime, config)
        handled, deadline = 0, time.monotonic() + 60
        while handled < 1_500 and time.monotonic() < deadline:
            handled += monitor.step(timeout=1.0)
        monitor.close()
        assert handled == 1_500
        found: list[Alert] = []
        with runtime.bus.subscribe([topics.ALERTS], f"t-{uuid.uuid4().hex}") as reader:
            while time.monotonic() < deadline and not found:
                found = [
                    envelope.payload  # type: ignore[misc]
                    # Other tests on the same broker write alerts too, some malformed on purpose
                    for envelope in decode_batch(reader.consume(1_000, timeout=1.0))[0]
                    if envelope.subject == config.name
                ]
        assert summary(found) == [("data_drift", "x3", "ks", "e1499")]
        profile = orjson.loads(runtime.store.get(f"meander:{config.name}:profile") or b"")
        assert (profile["count"], profile["windows"]) == (1_500, 3)
        runtime.store.delete(f"meander:{config.name}:profile")


def test_alerts_are_counted_by_kind_and_severity_when_published() -> None:
    stream = stream_config(f"counted{uuid.uuid4().hex[:8]}", data_window=100)
    labels = {"stream": stream.name, "kind": "schema_violations", "severity": "critical"}
    consumed = {"component": "monitor", "stream": stream.name}
    before = REGISTRY.get_sample_value("meander_alerts_total", labels) or 0.0

    def break_all(i: int, row: dict[str, Any], rng: random.Random) -> None:
        if i >= 100:
            row["x0"] = "abc"

    _, found = run(stream, rows(200, seed=8, change=break_all))

    assert [(a.kind, a.severity) for a in found] == [("schema_violations", "critical")]
    assert (REGISTRY.get_sample_value("meander_alerts_total", labels) or 0.0) - before == 1
    assert REGISTRY.get_sample_value("meander_events_consumed_total", consumed) == 200
