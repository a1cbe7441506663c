"""The predictor: scores every event of a stream with the champion, and challengers in shadow.

Predictors are stateless copies sharing one consumer group, so the group spreads the
partitions over them and each event is scored by one of them. A step reads a batch, sends
what cannot be scored to the dead-letter topic with the reason (not a CloudEvent, not a feature
event, outside the stream's schema), scores the rest with the champion and every challenger,
publishes the predictions, and only then commits. Before each batch it asks the registry which
versions and revisions are current (one round trip) and swaps in whatever changed, so a new
champion serves from the next batch on without a restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from meander import topics
from meander.bus import Record
from meander.component import Component
from meander.config import StreamConfig
from meander.deadletter import DeadLetters
from meander.events import FeatureEvent, Prediction, decode_batch, encode
from meander.exceptions import RegistryError
from meander.runtime import Runtime
from meander.schema import Schema
from meander.telemetry import LagSampler, Meter, ages
from meander.telemetry.metrics import END_TO_END_LATENCY, PREDICTION_LATENCY, PREDICTIONS
from models.inference import clean, predict_many
from models.registry import Heads, Registry
from models.signing import signer_for

__all__ = ["SERVED_SOURCE", "Predictor"]

log = logging.getLogger(__name__)
_ROLES = ("champion", "challenger")
SOURCE = "/meander/predictor"
SERVED_SOURCE = "/meander/service/predict"
"""The CloudEvents source of events the service scored synchronously (``POST .../predict``):
their champion prediction is already on ``S.predictions``, so predictors pass them by; the
learner and the monitor read them like any other."""


class Predictor(Component):
    """Serves one stream's predictions from the registry's current champion."""

    name = "predictor"

    def __init__(
        self,
        runtime: Runtime,
        stream: StreamConfig,
        *,
        group: str | None = None,
        batch: int = 500,
    ) -> None:
        self.runtime, self.stream, self.batch = runtime, stream, batch
        self.registry = Registry(runtime.store, stream.name, signer_for(runtime.settings))
        self.schema = Schema(stream)
        self.consumer = runtime.bus.subscribe(
            [topics.events(stream.name)], group or f"meander-predictor-{stream.name}"
        )
        self.dead = DeadLetters(runtime.bus, self.name)
        self.topic = topics.predictions(stream.name)
        self.models: dict[int, tuple[Any, int]] = {}
        self.champion: int | None = None
        self.challengers: tuple[int, ...] = ()
        self.scored = 0
        self.served_elsewhere = 0
        self.meter = Meter(self.name, stream.name)
        self.lag = LagSampler(self.name, self.consumer)
        self._model_time = PREDICTION_LATENCY.labels(stream.name)
        self._end_to_end = END_TO_END_LATENCY.labels(stream.name)
        self._predictions = {r: PREDICTIONS.labels(stream.name, r) for r in _ROLES}

    def step(self, timeout: float = 0.0) -> int:
        self.lag.sample()  # also while there is no champion: that is when lag grows
        if not self._refresh(self.registry.heads()):
            time.sleep(min(timeout, 0.2))  # nothing to serve with yet: leave the events waiting
            return 0
        messages = self.consumer.consume(self.batch, timeout)
        if not messages:
            return 0
        self.meter.read(len(messages))
        envelopes, rejected = decode_batch(
            messages, max_bytes=self.runtime.settings.max_event_bytes
        )
        events: list[FeatureEvent] = []
        for envelope in envelopes:
            if envelope.source == SERVED_SOURCE:
                self.served_elsewhere += 1
                continue
            event = envelope.payload
            problem = (
                f"expected {FeatureEvent.type} on {envelope.message.topic}, got {envelope.type}"
                if not isinstance(event, FeatureEvent)
                else self.schema.violation(event.features)
            )
            if problem is None:
                events.append(event)  # type: ignore[arg-type]
            else:
                rejected.append((envelope.message, problem))
        records = self._score(events)
        self.runtime.bus.publish(records)
        if records:
            self.meter.produced.inc(len(records))
            self._end_to_end.observe_many(ages([e.time for e in events], time.time()))
        self.dead.send(rejected)
        self.consumer.commit()
        self.scored += len(events)
        return len(messages)

    @property
    def handled(self) -> int:
        """Events read so far: scored, dead-lettered, or already served by the service."""
        return self.scored + self.dead.count + self.served_elsewhere

    def close(self) -> None:
        self.lag.close()
        self.consumer.close()

    def _refresh(self, heads: Heads) -> bool:
        """Load whatever version or revision changed; False while there is no champion."""
        wanted = ([heads.champion] if heads.champion is not None else []) + list(heads.challengers)
        for version in wanted:
            revision = heads.revisions.get(version, 0)
            cached = self.models.get(version)
            if cached is None or cached[1] != revision:
                try:
                    self.models[version] = self.registry.load(version)
                except RegistryError as error:
                    # Keep serving the copy we have rather than stop; say why loudly.
                    log.error(
                        "%s: cannot load v%s: %s",
                        self.stream.name,
                        version,
                        error,
                        extra={"stream": self.stream.name},
                    )
        for version in set(self.models) - set(wanted):
            del self.models[version]
        self.champion = heads.champion if heads.champion in self.models else None
        self.challengers = tuple(v for v in heads.challengers if v in self.models)
        return self.champion is not None

    def _score(self, events: list[FeatureEvent]) -> list[Record]:
        if not events:
            return []
        xs = [clean(event.features) for event in events]
        records: list[Record] = []
        roles = [(self.champion, "champion")] + [(v, "challenger") for v in self.challengers]
        for version, role in roles:
            assert version is not None
            started = time.perf_counter()
            scored = predict_many(self.models[version][0], xs, self.stream.task)
            seconds = (time.perf_counter() - started) / len(xs)
            self._model_time.observe(seconds, count=len(xs))
            self._predictions[role].inc(len(xs))
            latency_ms = seconds * 1000
            for event, (prediction, proba) in zip(events, scored, strict=True):
                answer = Prediction(
                    event_id=event.id,
                    model=self.stream.name,
                    version=version,
                    role=role,  # type: ignore[arg-type]
                    prediction=prediction,
                    probabilities=proba,
                    latency_ms=latency_ms,
                    event_time=event.time,
                )
                records.append(encode(self.topic, answer, source=SOURCE, subject=self.stream.name))
        return records
