"""The helpers of meander.telemetry: reason classes, batch histograms, lag, the metrics port."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, Message, Record, TopicPartition
from meander.bus.base import UNREADABLE, Headers
from meander.clock import TimeWindow
from meander.events import Alert, FeatureEvent, decode_batch, encode
from meander.exceptions import ConfigError
from meander.schema import Schema
from meander.telemetry import BatchHistogram, LagSampler, dead_letter_reason, serve_metrics

if TYPE_CHECKING:
    from tests.conftest import MakeStream


def decode_reasons(*messages: Message) -> list[str | None]:
    return [reason for _, reason in decode_batch(list(messages), max_bytes=100)[1]]


def test_the_reasons_meander_writes_fall_in_their_classes(make_stream: MakeStream) -> None:
    from meander.consumers.notifier.deliveries import Outcome
    from meander.consumers.notifier.webhooks import Notice, Webhook
    from meander.models.inference import label_problem

    stream = make_stream("reasons")
    good = encode("reasons.events", FeatureEvent(features={"x0": 1.0}), source="/t")
    alert = Alert(kind="data_drift", stream="s", severity="info", statistic="psi", value=1.0)
    record = encode(topics.ALERTS, alert, source="/t")
    read = Message(topics.ALERTS, 0, 0, None, record.value, record.headers, 0)
    [envelope], _ = decode_batch([read])
    notice, hook = Notice.of(envelope), Webhook("http://127.0.0.1:1/in")

    def message(value: bytes, headers: Headers = good.headers) -> Message:
        return Message("reasons.events", 0, 0, None, value, headers, 0)

    written: dict[str, list[str | None]] = {
        "too_large": decode_reasons(message(b" " * 101)),
        "undecodable": decode_reasons(
            message(b"{"),  # not JSON
            # no CloudEvents headers, on a topic that carries CloudEvents only
            Message(topics.ALERTS, 0, 0, None, b"{}", (), 0),
            message(b"{}", (*good.headers[:1], ("ce_id", b"\xff"))),  # not UTF-8
            Message("reasons.events", 0, 0, None, None, good.headers, 0),  # a null value
            Message(
                "reasons.events",
                0,
                0,
                None,
                None,
                ((UNREADABLE, b"the Kafka client cannot read this record: x"),),
                -1,
            ),
        ),
        "contract": decode_reasons(
            message(b"{}"),  # JSON, but not a feature event
            message(b"{}", (*good.headers[:3], ("ce_type", b"io.example.what"))),
        ),
        "schema": [
            Schema(stream).violation({"x9": 1.0}),
            Schema(stream).violation(dict.fromkeys(stream.features, "a")),  # not numbers
            Schema(stream).violation({}),
        ],
        "wrong_label": [
            label_problem(1.5, "binary"),
            label_problem("x", "regression"),
            label_problem("maybe", "binary", stream.label_classes),
        ],
        "time": [
            TimeWindow(300).timestamp_problem(2**45),
            TimeWindow(300).time_problem(datetime(2099, 1, 1, tzinfo=UTC)),
            TimeWindow(300).time_problem(datetime(1960, 1, 1)),
        ],
        "delivery_failed": [
            Outcome(hook, notice, 3, "HTTP 500", 500).reason,
            Outcome(hook, notice, 0, "the notifier stopped first", None).reason,
        ],
        "other": ["something nobody expected", ""],
    }

    for reason_class, reasons in written.items():
        assert reasons and all(r is not None for r in reasons), reason_class
        assert [dead_letter_reason(r or "") for r in reasons] == [reason_class] * len(reasons)


def test_a_quoted_value_does_not_change_the_class() -> None:
    assert dead_letter_reason("feature 'country' = 'Invalid JSON' is not one of its") == "schema"
    assert dead_letter_reason("label 'webhook x failed after 3' is not a number") == "wrong_label"


def test_a_batch_histogram_exposes_what_prometheus_client_would() -> None:
    values = [0.0, 0.0001, 0.0002, 0.003, 0.07, 0.07, 2.0, 11.0, 60.0]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    buckets = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)
    batch = BatchHistogram("t_seconds", "T.", ["stream"], buckets, ours).labels("s")
    batch.observe_many(values[:4])
    batch.observe(0.07, count=2)
    batch.observe_many(values[6:])
    reference = Histogram("t_seconds", "T.", ["stream"], buckets=buckets, registry=theirs)
    for v in values:
        reference.labels("s").observe(v)

    def exposed(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        text = generate_latest(registry).decode()
        return {
            (s.name, s.labels.get("le", "")): round(s.value, 9)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if not s.name.endswith("_created")
        }

    assert exposed(ours) == exposed(theirs)


def lag(topic: str, partition: int, component: str = "predictor") -> float | None:
    labels = {"component": component, "topic": topic, "partition": str(partition)}
    found: float | None = REGISTRY.get_sample_value("meander_consumer_lag", labels)
    return found


def test_lag_is_what_the_consumer_has_still_to_read_sampled_at_most_every_interval() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"lagged.events": 2})
    bus.publish([Record("lagged.events", b"x", partition=p) for p in (0, 0, 0, 1)])
    consumer = bus.subscribe(["lagged.events"], "g")
    sampler = LagSampler("predictor", consumer, every=3600.0)
    sampler.sample()
    assert (lag("lagged.events", 0), lag("lagged.events", 1)) == (3.0, 1.0)

    consumer.consume(10, 0.0)
    sampler.sample()  # within the interval: no round trip, no change
    assert lag("lagged.events", 0) == 3.0
    sampler.every = 0.0
    sampler.sample()
    assert (lag("lagged.events", 0), lag("lagged.events", 1)) == (0.0, 0.0)
    sampler.close()
    assert lag("lagged.events", 0) is None and lag("lagged.events", 1) is None


def test_a_partition_no_longer_read_loses_its_series() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"moved.events": 2})
    bus.publish([Record("moved.events", b"x", partition=p) for p in (0, 1)])
    first, second = (TopicPartition("moved.events", p) for p in (0, 1))
    held: dict[TopicPartition, int] = {first: 0, second: 0}
    consumer = bus.assign([first, second])
    sampler = LagSampler("learner", consumer, every=0.0, positions=lambda: held)
    sampler.sample()
    assert lag("moved.events", 1, "learner") == 1.0

    del held[second]  # a rebalance gave it to another member
    sampler.sample()
    assert lag("moved.events", 0, "learner") == 1.0 and lag("moved.events", 1, "learner") is None
    sampler.close()


def test_a_failed_sample_leaves_the_step_alone() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"down.events": 1})
    consumer = bus.assign([TopicPartition("down.events", 0)])

    def broken(partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        raise ConnectionError("broker gone")

    consumer.known_end_offsets = broken  # type: ignore[method-assign]
    sampler = LagSampler("monitor", consumer, every=0.0)
    sampler.sample()  # no exception

    assert lag("down.events", 0, "monitor") is None


@pytest.fixture
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    yield free


def test_the_registry_is_served_once_per_process_on_its_port(port: int) -> None:
    server = serve_metrics(port, addr="127.0.0.1")
    assert server is not None
    try:
        assert serve_metrics(port, addr="127.0.0.1") is server  # `meander run all`: one registry
        with pytest.raises(ConfigError, match=f"already served on port {port}"):
            serve_metrics(port + 1 if port < 65535 else port - 1, addr="127.0.0.1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        names = {family.name for family in text_string_to_metric_families(text)}
        assert {"meander_events_consumed", "meander_deadletters"} <= names
    finally:
        server.close()
    assert serve_metrics(0) is None


def test_a_port_in_use_is_an_error_that_names_the_setting(port: int) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(ConfigError) as refused:
            serve_metrics(port, addr="127.0.0.1")

    message = str(refused.value)
    assert f"metrics_port {port} is already in use" in message
    assert "MEANDER_METRICS_PORT" in message and "0 to serve no metrics" in message
