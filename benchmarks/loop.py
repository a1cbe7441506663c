"""The closed loop against plain River models, on drifting streams with known change points.

For each stream: River's ARFClassifier(n_models=10) (Agrawal only, it is slow), a plain
HoeffdingTreeClassifier and a plain HoeffdingAdaptiveTreeClassifier, each run prequentially on
the same samples; then meander's whole loop (producer records, predictor, learner, trainer, and
the monitor when asked) on the embedded backends, starting from a Hoeffding tree, with labels
right after each prediction. The loop's accuracy is that of the predictions it served. Drift
detection delays and false alarms come from the concept_drift alerts it published. With
``--kafka`` the Agrawal loop also runs on a real Kafka broker and Redis server.

Results go to artifacts/bench/loop.json; docs/benchmarks.md explains them.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import fakeredis
from river import forest, metrics, tree

from meander import topics
from meander.bus import MemoryBroker, TopicPartition, embedded_bus
from meander.config import Settings, StreamConfig
from meander.consumers.loop import Loop, TickClock
from meander.events import Alert, ModelEvent, decode_batch
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.store.memory import memory_store

OUT = Path("artifacts/bench/loop.json")
CHUNK = 100
# The first champion is a Hoeffding tree that splits sooner than River's default (a grace
# period of 50 and a split confidence of 1e-3). The search space is the same for every stream:
# an adaptive tree, River's default tree and a linear model, which races the first champion
# once its first replay window has filled (learning.tune_first) and again after each drift.
MIN_SAMPLES = 200  # the gate judges a race on its last 200 shared events
MODEL = "tree.HoeffdingTreeClassifier(grace_period=50, delta=0.001)"
CANDIDATES = [
    "tree.HoeffdingAdaptiveTreeClassifier(seed=42)",
    "tree.HoeffdingTreeClassifier",
    "preprocessing.StandardScaler | linear_model.LogisticRegression",
]
STREAMS: dict[str, dict[str, Any]] = {
    "agrawal": {"name": "agrawal", "drift": "abrupt"},
    "sea": {"name": "sea", "drift": "abrupt"},
    "stagger_recurring": {"name": "stagger", "drift": "recurring"},
    "agrawal_gradual": {"name": "agrawal", "drift": "gradual", "width": 2_000},
    "hyperplane_incremental": {"name": "hyperplane", "drift": "incremental"},
}


def stream_config(source: Any, name: str) -> StreamConfig:
    config: StreamConfig = source.stream_config(
        name,
        model=MODEL,
        candidates=CANDIDATES,
        promotion={"min_samples": MIN_SAMPLES},
        learning={"publish_every": 250, "max_challengers": 2, "replay_window": 1_000},
    )
    return config


def plain(model: Any, samples: list[Any]) -> dict[str, float]:
    accuracy = metrics.Accuracy()
    started = time.perf_counter()
    for sample in samples:
        accuracy.update(sample.label, model.predict_one(sample.features))
        model.learn_one(sample.features, sample.label)
    seconds = time.perf_counter() - started
    return {
        "accuracy": round(accuracy.get(), 4),
        "events_per_second": round(len(samples) / seconds),
    }


def run_loop(
    runtime: Runtime, stream: StreamConfig, samples: list[Any], monitor: bool
) -> dict[str, Any]:
    loop = Loop(runtime, stream, monitor=monitor)
    publisher = Publisher(stream.name)
    clock = TickClock()  # record times by publishing order: the same run every time
    started = time.perf_counter()
    for start in range(0, len(samples), CHUNK):
        events, labels = publisher.push(samples[start : start + CHUNK])
        loop.feed(clock.stamp(events), clock.stamp(labels))
    loop.feed([], clock.stamp(publisher.flush()))
    seconds = time.perf_counter() - started
    state = loop.learner.state
    assert state is not None
    served = state.served["champion"].report()
    drifts, promotions = story(runtime, stream.name)
    loop.close()
    return {
        "accuracy": round(served["accuracy"], 4),
        "events_per_second": round(len(samples) / seconds),
        "drifts": drifts,
        "promotions": promotions,
        "champion": state.champion,
    }


def detection(drifts: list[int], truth: list[int], tolerance: int = CHUNK) -> dict[str, Any]:
    """Delay of the first alert after each true change, and the alerts that match none."""
    delays: list[int | None] = []
    matched: set[int] = set()
    for index, change in enumerate(truth):
        end = truth[index + 1] if index + 1 < len(truth) else 2**62
        hits = [d for d in drifts if change - tolerance <= d < end - tolerance]
        delays.append(hits[0] - change if hits else None)
        matched.update(hits[:1])
    return {"delays": delays, "false_alarms": [d for d in drifts if d not in matched]}


def story(runtime: Runtime, stream: str) -> tuple[list[int], list[int]]:
    """The event indices of the loop's concept drift alerts and of its promotions."""
    reader = runtime.bus.assign(
        [TopicPartition(topics.ALERTS, 0), TopicPartition(topics.MODELS, 0)]
    )
    drifts: list[int] = []
    promotions: list[int] = []
    while batch := reader.consume(5_000, 0.5):
        for envelope in decode_batch(batch)[0]:
            payload = envelope.payload
            if getattr(payload, "stream", None) != stream:
                continue
            if isinstance(payload, Alert) and payload.kind == "concept_drift":
                drifts.append(_index(payload.at_event))
            elif (
                isinstance(payload, ModelEvent)
                and payload.action == "promoted"
                and payload.at_event
            ):
                promotions.append(_index(payload.at_event))
    reader.close()
    return drifts, promotions


def _index(event_id: str | None) -> int:
    return int((event_id or "-1").rsplit("-", 1)[-1])


def embedded(stream: StreamConfig) -> Runtime:
    """A fresh embedded runtime for one stream: its own bus and its own store."""
    settings = Settings(streams=[stream])
    # The limits of a deployment: models and checkpoints may outgrow an event's size limit.
    bus = embedded_bus(settings, MemoryBroker())
    bus.create_topics(topics.layout([stream]))
    return Runtime(settings, bus, memory_store(fakeredis.FakeServer()))


def bench_stream(key: str, events: int, drift_every: int, with_arf: bool) -> dict[str, Any]:
    spec = STREAMS[key]
    source = synthetic(
        spec["name"],
        drift=spec["drift"],
        drift_every=drift_every,
        width=spec.get("width", 1_000),
        seed=42,
    )
    samples = list(source.samples(events))
    truth = source.drift_points(events)
    result: dict[str, Any] = {"events": events, "true_drifts": truth}
    if with_arf:
        result["arf10"] = plain(forest.ARFClassifier(n_models=10, seed=42), samples)
    result["hoeffding_tree"] = plain(tree.HoeffdingTreeClassifier(), samples)
    result["hoeffding_adaptive_tree"] = plain(
        tree.HoeffdingAdaptiveTreeClassifier(seed=42), samples
    )
    stream = stream_config(source, key)
    loop = run_loop(embedded(stream), stream, samples, monitor=False)
    loop |= detection(loop["drifts"], truth)
    result["loop"] = loop
    result["loop_with_monitor"] = run_loop(embedded(stream), stream, samples, monitor=True)
    if with_arf:
        result["loop_speedup_over_arf10"] = round(
            loop["events_per_second"] / result["arf10"]["events_per_second"], 1
        )
    return result


def other_seeds(key: str, events: int, seeds: tuple[int, ...] = (1, 2, 3)) -> list[dict[str, Any]]:
    """The loop against a plain adaptive tree on the same stream drawn with other seeds: one
    seed is one sample, and a loop tuned to it would show here."""
    spec = STREAMS[key]
    rows = []
    for seed in seeds:
        source = synthetic(spec["name"], drift=spec["drift"], drift_every=events // 4, seed=seed)
        samples = list(source.samples(events))
        adaptive = plain(tree.HoeffdingAdaptiveTreeClassifier(seed=42), samples)
        stream = stream_config(source, key)
        loop = run_loop(embedded(stream), stream, samples, monitor=False)
        rows.append(
            {
                "seed": seed,
                "hoeffding_adaptive_tree": adaptive["accuracy"],
                "loop": loop["accuracy"],
                "loop_events_per_second": loop["events_per_second"],
            }
        )
    return rows


def floor(events: int) -> dict[str, Any]:
    """What the loop costs beyond its champion's own work: one Agrawal concept and no candidates,
    so the champion is the only model that predicts and learns, against the same tree run
    plainly on the same samples."""
    source = synthetic("agrawal", drift_every=events * 10, seed=42)  # no change in the run
    samples = list(source.samples(events))
    stream = source.stream_config(
        "agrawal_stationary",
        model=MODEL,
        promotion={"min_samples": MIN_SAMPLES},
        learning={"publish_every": 250, "replay_window": 1_000, "tune_first": False},
    )
    alone = plain(tree.HoeffdingTreeClassifier(grace_period=50, delta=0.001), samples)
    loop = run_loop(embedded(stream), stream, samples, monitor=False)
    overhead = 1e6 / loop["events_per_second"] - 1e6 / alone["events_per_second"]
    return {
        "events": events,
        "plain_tree": alone,
        "loop": loop,
        "loop_overhead_us_per_event": round(overhead, 1),
    }


def bench_kafka(events: int, drift_every: int) -> dict[str, Any]:
    from meander.infra.kafka import LocalKafka
    from meander.infra.redis import LocalRedis

    with ExitStack() as stack:
        bootstrap = (
            os.environ.get("MEANDER_KAFKA_BOOTSTRAP") or stack.enter_context(LocalKafka()).bootstrap
        )
        redis_url = os.environ.get("MEANDER_REDIS_URL") or stack.enter_context(LocalRedis()).url
        source = synthetic("agrawal", drift_every=drift_every, seed=42)
        stream = stream_config(source, f"bench-{uuid.uuid4().hex[:6]}")
        settings = Settings(
            kafka_bootstrap=bootstrap,
            redis_url=redis_url,
            model_signing_key="benchmark-signing-key-0123456789",
            streams=[stream],
        )
        samples = list(source.samples(events))
        with Runtime.open(settings) as runtime:
            result = run_loop(runtime, stream, samples, monitor=False)
        result |= detection(result["drifts"], source.drift_points(events))
        return {"events": events, "true_drifts": source.drift_points(events), "loop": result}


def main(events: int = 40_000, kafka: bool = True, kafka_events: int = 20_000) -> dict[str, Any]:
    results: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    for key in STREAMS:
        results[key] = bench_stream(key, events, events // 4, with_arf=key == "agrawal")
        print(key, json.dumps(results[key]), flush=True)
    for key in ("agrawal", "sea"):
        results[f"{key}_other_seeds"] = other_seeds(key, events)
        print(f"{key}_other_seeds", json.dumps(results[f"{key}_other_seeds"]), flush=True)
    results["floor"] = floor(events)
    print("floor", json.dumps(results["floor"]), flush=True)
    if kafka:
        results["agrawal_kafka"] = bench_kafka(kafka_events, kafka_events // 4)
        print("agrawal_kafka", json.dumps(results["agrawal_kafka"]), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results
