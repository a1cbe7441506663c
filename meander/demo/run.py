"""``meander demo``: the whole closed loop on a drifting stream, narrated as it happens.

A seeded Agrawal stream changes its concept every quarter of the run. The demo publishes its
events and (slightly late) labels through the real components, on the embedded bus and store or,
with ``--kafka``, on Kafka and Redis, and prints as it goes: throughput, the rolling accuracy of
the predictions served, each drift alert, each challenger promoted, rejected or rolled back. A
few malformed messages are mixed in on purpose: they reach the dead-letter topic with their
reason and nothing stops. It ends with a summary and the lineage of the final champion.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import orjson
from pydantic import SecretStr

from meander import topics
from meander.bus import Bus, Record, TopicPartition
from meander.config import Settings
from meander.consumers.loop import Loop, TickClock
from meander.events import Alert, FeatureEvent, ModelEvent, decode_batch
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

__all__ = ["AGRAWAL", "malformed", "run_demo"]

AGRAWAL = synthetic("agrawal").stream_config(
    "agrawal",
    model="tree.HoeffdingTreeClassifier(grace_period=50, delta=0.001)",
    candidates=[
        "tree.HoeffdingAdaptiveTreeClassifier(seed=42)",
        "tree.HoeffdingTreeClassifier",
        "preprocessing.StandardScaler | linear_model.LogisticRegression",
    ],
    promotion={"min_samples": 200},
    learning={"publish_every": 250, "max_challengers": 2, "replay_window": 1_000},
)
CHUNK = 200


def malformed(topic: str) -> list[Record]:
    """Three messages a reader must reject, each for a different reason."""
    almost = (("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"/demo"))
    return [
        Record(topic, b"{not json", headers=(("ce_specversion", b"1.0"),)),
        Record(topic, b'{"features": {}}'),
        Record(
            topic,
            orjson.dumps({"id": "x", "features": {"age": [1, 2]}}),
            headers=(*almost, ("ce_type", FeatureEvent.type.encode())),
        ),
    ]


def run_demo(
    settings: Settings,
    *,
    events: int = 40_000,
    echo: bool = True,
    label_delay: int = 20,
    server: Callable[[Runtime], AbstractContextManager[str | None]] | None = None,
    linger: bool = False,
    rate: float | None = None,
) -> dict[str, Any]:
    """Run the loop over ``events`` samples; returns the summary it prints.

    ``server`` serves the service (API and dashboard) beside the loop: the command line passes
    :class:`~meander.services.demo_server.DemoServer`, whose context gives the service's URL, or
    None when its port is taken. ``linger`` keeps it serving after the summary until Ctrl-C, and
    ``rate`` paces the stream to that many events per second so the dashboard can be watched
    live.
    """
    stream = settings.streams[0] if settings.streams else AGRAWAL
    update: dict[str, Any] = {}
    if settings.uses_kafka:  # a fresh lineage each run, so no earlier checkpoint is resumed
        stream = stream.model_copy(update={"name": f"{stream.name}-demo-{uuid.uuid4().hex[:6]}"})
        if settings.model_signing_key is None:
            # Every component of the demo runs in this process: a key of its own will do.
            update["model_signing_key"] = SecretStr(secrets.token_hex(32))
    settings = settings.model_copy(update={"streams": [stream], **update})
    runtime = _runtime(settings)
    backend = "Kafka + Redis" if settings.uses_kafka else "embedded bus and store"
    drift_every = max(events // 4, 1)
    source = synthetic("agrawal", drift_every=drift_every, seed=42)
    _say(echo, f"meander demo: {events} events of stream {stream.name!r} on the {backend}")
    _say(echo, f"  the concept changes at events {source.drift_points(events)}")
    loop = Loop(runtime, stream)
    story = _Story(runtime.bus, stream.name, echo)
    publisher = Publisher(stream.name, label_delay=label_delay, seed=42)
    started = time.monotonic()
    stack = ExitStack()
    try:
        url = stack.enter_context(server(runtime)) if server is not None else None
        if server is not None:
            _say(echo, f"  dashboard: {url}/dashboard" if url else "  (port taken: no dashboard)")
        clock = TickClock()  # record times by publishing order: every demo tells the same story
        loop.feed(clock.stamp(malformed(topics.events(stream.name))), [])
        samples = list(source.samples(events))
        for start in range(0, events, CHUNK):
            chunk_events, labels = publisher.push(samples[start : start + CHUNK])
            loop.feed(clock.stamp(chunk_events), clock.stamp(labels))
            story.tell(loop, start + CHUNK, time.monotonic() - started)
            _pace(rate, start + CHUNK, started)
        loop.feed([], clock.stamp(publisher.flush()))
        story.tell(loop, events, time.monotonic() - started, final=True)
        truth = source.drift_points(events)
        summary = _summary(loop, story, events, time.monotonic() - started, truth)
        _report(summary, echo)
        if linger and url:
            _say(echo, f"serving {url}/dashboard until Ctrl-C")
            _wait_for_interrupt()
        return summary
    finally:
        stack.close()
        loop.close()
        runtime.close()


def _runtime(settings: Settings) -> Runtime:
    if settings.uses_kafka:
        return Runtime.open(settings)
    return Runtime.embedded(settings)


class _Story:
    """Follows the alerts and lifecycle topics and says what happened, once."""

    def __init__(self, bus: Bus, stream: str, echo: bool) -> None:
        self.stream, self.echo = stream, echo
        self.reader = bus.assign(
            [TopicPartition(topics.ALERTS, 0), TopicPartition(topics.MODELS, 0)]
        )
        self.index: dict[str, int] = {}
        self.drifts: list[int] = []
        self.decisions: list[tuple[str, int | None, int]] = []
        self.last_progress = 0

    def _decision(self, event: ModelEvent, at: int) -> None:
        self.decisions.append((event.action, event.version, at))
        if event.action in ("promoted", "rolled_back", "challenger_trained"):
            _say(self.echo, f"  * {event.action} v{event.version} at event {at}: {event.reason}")

    def tell(self, loop: Loop, published: int, seconds: float, final: bool = False) -> None:
        for envelope in decode_batch(self.reader.consume(1_000, 0.0))[0]:
            payload = envelope.payload
            if getattr(payload, "stream", None) != self.stream:
                continue
            at = _index(getattr(payload, "at_event", None))
            if isinstance(payload, Alert) and payload.kind == "concept_drift":
                self.drifts.append(at)
                _say(self.echo, f"  ! drift at event {at}: {payload.message}")
            elif isinstance(payload, ModelEvent) and payload.at_event is not None:
                self._decision(payload, at)
        due = published - self.last_progress >= 5_000
        if due or (final and published != self.last_progress):
            self.last_progress = published
            rolling = _served(loop).get("accuracy_rolling", 0.0)
            champion = loop.learner.state.champion if loop.learner.state else "?"
            rate = published / max(seconds, 1e-9)
            _say(
                self.echo,
                f"  {published:>6} events  {rate:>6.0f}/s  rolling accuracy {rolling:.3f}  "
                f"champion v{champion}",
            )


def _pace(rate: float | None, published: int, started: float) -> None:
    if rate is not None:
        time.sleep(max(0.0, published / rate - (time.monotonic() - started)))


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _index(event_id: str | None) -> int:
    # Synthetic ids end with the event's index: "agrawal-42-00012345".
    try:
        return int((event_id or "").rsplit("-", 1)[-1])
    except ValueError:
        return -1


def _served(loop: Loop) -> dict[str, float]:
    state = loop.learner.state
    metric = state.served.get("champion") if state else None
    return metric.report() if metric else {}


def _summary(
    loop: Loop, story: _Story, events: int, seconds: float, truth: list[int]
) -> dict[str, Any]:
    state = loop.learner.state
    assert state is not None
    registry = Registry(loop.runtime.store, loop.stream.name, signer_for(loop.runtime.settings))
    lineage = [f"v{v.version} ({v.status}, {v.spec})" for v in registry.lineage(state.champion)]
    # Labels of one millisecond are learned partition by partition, so the event a drift is
    # found at may come a little before the change's own first events: allow one chunk.
    delays = [min((d - t for d in story.drifts if d >= t - CHUNK), default=None) for t in truth]
    return {
        "stream": loop.stream.name,
        "events": events,
        "seconds": round(seconds, 1),
        "events_per_second": round(events / seconds),
        "accuracy": round(_served(loop).get("accuracy", 0.0), 4),
        "drifts": story.drifts,
        "true_drifts": truth,
        "detection_delays": delays,
        "promotions": [at for action, _, at in story.decisions if action == "promoted"],
        "rollbacks": [at for action, _, at in story.decisions if action == "rolled_back"],
        "rejected": sum(1 for action, _, _ in story.decisions if action == "rejected"),
        "dead_lettered": loop.predictor.dead.count + loop.learner.dead.count,
        "champion": state.champion,
        "lineage": lineage,
    }


def _report(summary: dict[str, Any], echo: bool) -> None:
    lines = [
        f"done: {summary['events']} events in {summary['seconds']}s "
        f"({summary['events_per_second']}/s); served accuracy {summary['accuracy']:.3f}",
        f"  drifts detected at {summary['drifts']} (true changes {summary['true_drifts']}, "
        f"delays {summary['detection_delays']})",
        f"  promotions at {summary['promotions']}, rollbacks at {summary['rollbacks']}, "
        f"{summary['rejected']} challengers rejected",
        f"  {summary['dead_lettered']} dead-lettered (malformed on purpose)",
        f"  champion lineage: {' <- '.join(summary['lineage'])}",
    ]
    for line in lines:
        _say(echo, line)


def _say(echo: bool, line: str) -> None:
    if echo:
        print(line, flush=True)
