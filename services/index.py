"""The prediction index: every prediction, by its event id, in Redis for a while.

:class:`PredictionIndex` reads every stream's ``S.predictions`` in one consumer group, so that
several service processes index each prediction once between them, and writes each to the hash
``meander:{S}:prediction:{event_id}``: one field per model version (as text), the prediction's
JSON as the value, expiring ``service.prediction_ttl_seconds`` after its last write. A batch is
one pipeline; offsets are committed after it, so a prediction is indexed at least once.
:func:`lookup` reads a hash back as the champion's prediction and its challengers' (shadows).

>>> import fakeredis
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.config import Settings, StreamConfig
>>> from meander.events import encode
>>> from meander.store import memory_store
>>> stream = StreamConfig(name="fraud", task="binary", features={"amount": "numeric"})
>>> settings = Settings(streams=[stream])
>>> runtime = Runtime(settings, MemoryBus(MemoryBroker()), memory_store(fakeredis.FakeServer()))
>>> runtime.bus.create_topics(topics.layout(settings.streams))
>>> answer = Prediction(event_id="e1", model="fraud", version=2, prediction=True, latency_ms=0.1)
>>> _ = runtime.bus.publish([encode("fraud.predictions", answer, source="/doc")])
>>> index = PredictionIndex(runtime)
>>> index.step(0.1)
1
>>> found = lookup(runtime.store, "fraud", "e1")
>>> found.champion.version, found.shadows
(2, [])
>>> lookup(runtime.store, "fraud", "e2") is None
True
>>> index.close()
"""

from __future__ import annotations

import logging

import redis
from pydantic import BaseModel, Field, ValidationError

from meander import keys, topics
from meander.bus import Message, next_offsets
from meander.component import Component, rewound_on_failure
from meander.deadletter import DeadLetters
from meander.events import Prediction, decode_batch
from meander.models.inference import prediction_problem
from meander.runtime import Runtime

__all__ = ["GROUP", "PredictionIndex", "PredictionLookup", "lookup", "prediction_key"]

log = logging.getLogger(__name__)

GROUP = "meander-service-index"


def prediction_key(stream: str, event_id: str) -> str:
    """The Redis hash holding every model version's prediction for one event.

    >>> prediction_key("fraud", "tx-1001")
    'meander:fraud:prediction:tx-1001'
    """
    return keys.prediction(stream, event_id)


class PredictionLookup(BaseModel):
    """What the models answered for one event: the champion, and challengers in shadow."""

    event_id: str = Field(examples=["tx-1001"])
    stream: str = Field(examples=["fraud"])
    champion: Prediction = Field(description="the champion's prediction (the one served)")
    shadows: list[Prediction] = Field(
        description="challengers' predictions for the same event, by version; never served"
    )


class PredictionIndex(Component):
    """Indexes every configured stream's predictions by event id (see the module docstring)."""

    name = "prediction-index"

    def __init__(self, runtime: Runtime, *, group: str = GROUP, batch: int = 500) -> None:
        self.settings = runtime.settings
        self.store = runtime.store
        self.batch = batch
        self.ttl = runtime.settings.service.prediction_ttl_seconds
        self.streams = {topics.predictions(s.name): s for s in runtime.settings.streams}
        self.dead = DeadLetters(runtime.bus, component=self.name)
        self.consumer = runtime.bus.subscribe(sorted(self.streams), group=group)
        self.indexed = 0

    def step(self, timeout: float = 0.0) -> int:
        messages = self.consumer.consume(self.batch, timeout=timeout)
        if not messages:
            return 0
        with rewound_on_failure(self.consumer, messages):
            self._index(messages)
        return len(messages)

    def close(self) -> None:
        self.consumer.close()

    def _index(self, messages: list[Message]) -> None:
        envelopes, rejected = decode_batch(messages, max_bytes=self.settings.max_event_bytes)
        written: set[str] = set()
        indexed = 0
        with self.store.pipeline(transaction=False) as pipe:
            for envelope in envelopes:
                payload, topic = envelope.payload, envelope.message.topic
                if not isinstance(payload, Prediction):
                    rejected.append((envelope.message, _misplaced(envelope.type, topic)))
                    continue
                stream = self.streams[topic]
                if (problem := prediction_problem(payload, stream)) is not None:
                    rejected.append((envelope.message, problem))
                    continue
                key = prediction_key(stream.name, payload.event_id)
                pipe.hset(key, str(payload.version), payload.model_dump_json())
                written.add(key)
                indexed += 1
            for key in written:
                pipe.expire(key, self.ttl)
            pipe.execute()
        self.dead.send(rejected)
        self.consumer.commit(next_offsets(messages))
        self.indexed += indexed


def lookup(store: redis.Redis[bytes], stream: str, event_id: str) -> PredictionLookup | None:
    """The predictions indexed for ``event_id``; None when there is no champion's (yet).

    When an event was scored by more than one champion (served again after a promotion), the
    latest version's answer is the champion's and the others are shadows.
    """
    stored = store.hgetall(prediction_key(stream, event_id))
    predictions: list[Prediction] = []
    for version, value in stored.items():
        try:
            predictions.append(Prediction.model_validate_json(value))
        except ValidationError as error:
            log.warning("%s v%s of %r is unreadable: %s", stream, version, event_id, error)
    champions = [p for p in predictions if p.role == "champion"]
    if not champions:
        return None
    champion = max(champions, key=lambda p: p.version)
    shadows = sorted((p for p in predictions if p is not champion), key=lambda p: p.version)
    return PredictionLookup(event_id=event_id, stream=stream, champion=champion, shadows=shadows)


def _misplaced(kind: str, topic: str) -> str:
    return (
        f"a {kind} event does not belong on {topic}: the prediction index reads only "
        f"{Prediction.type}; publish it to its own topic"
    )
