"""The predictor: scores every event of a stream with the champion, and challengers in shadow.

Predictors are stateless copies sharing one consumer group, so the group spreads the
partitions over them and each event is scored by one of them. A step reads a batch, sends
what cannot be scored to the dead-letter topic with the reason (not a CloudEvent, not a feature
event, outside the stream's schema), scores the rest with the champion and every challenger,
and sends the predictions without waiting for the broker: the batch's offsets are committed
once they are acknowledged (:class:`~meander.bus.inflight.InFlight`), while the next batches
are read and scored. Before each batch it asks the registry which versions and revisions are
current (one round trip) and swaps in whatever changed, so a new champion serves from the
next batch on without a restart.
"""

from __future__ import annotations

import logging
import time

import redis

from meander import topics
from meander.bus import Message, Record, TopicPartition, next_offsets
from meander.bus.inflight import InFlight
from meander.clock import TimeWindow
from meander.component import Component, rewound_on_failure
from meander.config import StreamConfig
from meander.consumers.predictor.lineup import Lineup
from meander.consumers.predictor.predictions import PredictionWriter
from meander.consumers.predictor.served import is_marked
from meander.deadletter import DeadLetters
from meander.events import Envelope, FeatureEvent, decode, decode_batch
from meander.events.plain import flat_hint
from meander.exceptions import BusError, StoreUnavailable
from meander.models.inference import Scored, clean
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_model
from meander.runtime import Runtime
from meander.schema import Schema
from meander.telemetry import LagSampler, Meter, ages
from meander.telemetry.metrics import END_TO_END_LATENCY, PREDICTION_LATENCY, PREDICTIONS
from meander.vocabulary import SERVED_SOURCE

__all__ = ["Predictor"]

log = logging.getLogger(__name__)
STORE_FAILURES = (StoreUnavailable, redis.RedisError)
_ROLES = ("champion", "challenger")
_NEVER = 2**63  # an offset no partition reaches
SOURCE = "/meander/predictor"


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
        refresh_every: float = 0.0,
        commit_every: float = 0.0,
    ) -> None:
        self.runtime, self.stream, self.batch = runtime, stream, batch
        # Asking the registry is a round trip: a predictor run as a process, whose steps under
        # load are a few events each, asks at most every ``refresh_every`` seconds. At 0 (the
        # in-process loop, whose runs must not depend on timing) it asks before every batch.
        self.refresh_every = refresh_every
        self._refreshed_at = float("-inf")
        self.signer = signer_for(runtime.settings)
        self.registry = Registry(runtime.store, stream.name, self.signer)
        self.times = TimeWindow(runtime.settings.max_clock_skew_seconds)
        self.schema = Schema(stream)
        # River's modules for the model are imported now, while the group forms, rather than
        # when the first champion is unpickled.
        build_model(stream.model)
        self.consumer = runtime.bus.subscribe(
            [topics.events(stream.name)], group or f"meander-predictor-{stream.name}"
        )
        self.in_flight = InFlight(
            self.consumer,
            timeout=runtime.settings.kafka_timeout_seconds,
            commit_every=commit_every,
        )
        self.dead = DeadLetters(runtime.bus, self.name)
        # Exactly once: each batch's predictions, dead letters and offsets in one transaction.
        self.transactions = (
            runtime.bus.transactional(f"{self.name}-{stream.name}")
            if runtime.settings.processing_guarantee == "exactly_once"
            else None
        )
        self._unprepared = self.transactions
        self.topic = topics.predictions(stream.name)
        self.writer = PredictionWriter(
            self.topic,
            stream.name,
            source=SOURCE,
            cloudevents=stream.encoding.predictions == "cloudevents",
        )
        self.lineup = Lineup(self.registry, stream)
        self._held_by: tuple[int, int] | None = None  # the champion revision events wait past
        self._store_failing = False  # said once per outage
        self.scored = 0
        self.served_elsewhere = 0
        self.meter = Meter(self.name, stream.name)
        self.lag = LagSampler(self.name, self.consumer)
        self._model_time = PREDICTION_LATENCY.labels(stream.name)
        self._end_to_end = END_TO_END_LATENCY.labels(stream.name)
        self._predictions = {r: PREDICTIONS.labels(stream.name, r) for r in _ROLES}

    def step(self, timeout: float = 0.0) -> int:
        self.lag.sample()  # also while there is no champion: that is when lag grows
        self.in_flight.settle()
        now = time.monotonic()
        if self.lineup.champion is None or now - self._refreshed_at >= self.refresh_every:
            self._refreshed_at = now
            if not self._serving():
                time.sleep(min(timeout, 0.2))  # nothing to serve with yet: leave events waiting
                return 0
        if self._held_by == self.lineup.revision():
            # A champion that answers nothing: the events wait for its next revision.
            time.sleep(min(timeout, 0.2))
            return 0
        if self._unprepared is not None:
            # Once, before the first batch is read (a transactional producer starts in a few
            # round trips, more while the broker loads its transaction state): that batch then
            # waits for nothing but its own transaction.
            self._unprepared.prepare()
            self._unprepared = None
        messages = self.consumer.consume(self.batch, timeout)
        if not messages:
            return 0
        self.meter.read(len(messages))
        with rewound_on_failure(self.consumer, messages):
            handled = self._serve(messages)
        self.in_flight.settle()
        return handled

    def _serve(self, messages: list[Message]) -> int:
        """Score what can be scored, dead-letter the rest, send both without waiting; how many
        messages that handled (not those held back for the champion's next revision)."""
        envelopes, rejected = decode_batch(
            messages, max_bytes=self.runtime.settings.max_event_bytes, layout=self.stream.encoding
        )
        events, read = self._admit(envelopes, rejected)
        records, events, held = self._score(events, read, rejected)
        if held:
            messages, rejected = self._hold_back(held, messages, rejected)
        else:
            self._held_by = None
        if self.transactions is not None:
            self.transactions.publish(
                records + self.dead.records(rejected), self.consumer, next_offsets(messages)
            )
            self.dead.counted(rejected)
        else:
            self.dead.send(rejected)
            # Not waiting for the acknowledgements: the next batch is read and scored
            # meanwhile, and this one's offsets are committed once its predictions are stored.
            self.in_flight.add(self.runtime.bus.send(records), messages)
        if records:
            self.meter.produced.inc(len(records))
            self._end_to_end.observe_many(ages([e.time for e in events], time.time()))
        self.scored += len(events)
        return len(messages)

    @property
    def handled(self) -> int:
        """Events read so far: scored, dead-lettered, or already served by the service."""
        return self.scored + self.dead.count + self.served_elsewhere

    def working(self) -> bool:
        """Once its group gave it partitions and it has a champion to serve."""
        return self.lineup.champion is not None and bool(self.consumer.assignment())

    def close(self) -> None:
        self.lag.close()
        try:
            self.in_flight.flush()
        except BusError as error:
            # Closing must go on (other components close after this one); what was not
            # committed is read again by whoever reads these partitions next.
            log.error("%s: predictions not all committed on close: %s", self.stream.name, error)
        finally:
            if self.transactions is not None:
                self.transactions.close()
            self.consumer.close()

    def _admit(
        self, envelopes: list[Envelope], rejected: list[tuple[Message, str]]
    ) -> tuple[list[FeatureEvent], list[Message]]:
        """The feature events to score and their messages; what is not one, or breaks the
        schema or is dated outside the time window, joins ``rejected`` with the reason. Events
        the service scored (their mark matches, see consumers.predictor.served) are passed by."""
        events: list[FeatureEvent] = []
        read: list[Message] = []
        horizon = self.times.horizon()
        for envelope in envelopes:
            event, message = envelope.payload, envelope.message
            if not isinstance(event, FeatureEvent):
                wrong = f"expected {FeatureEvent.type} on {message.topic}, got {envelope.type}"
                rejected.append((message, wrong))
            elif envelope.source == SERVED_SOURCE and self._served(event, message):
                self.served_elsewhere += 1
            elif problem := self.times.record_problem(message.timestamp_ms, event.time, horizon):
                rejected.append((message, problem))
            else:
                events.append(event)
                read.append(message)
        problems = self.schema.violations([event.features for event in events])
        if not any(problems):
            return events, read
        for message, broken in zip(read, problems, strict=True):
            if broken is not None:
                rejected.append((message, broken + self._hint(message)))
        kept = [i for i, problem in enumerate(problems) if problem is None]
        return [events[i] for i in kept], [read[i] for i in kept]

    def _hint(self, message: Message) -> str:
        # A flat object of features whose id or time field was taken for a feature: say how
        # to name them. Only for records that break the schema, so decoding again is cheap.
        if decode(message, layout=self.stream.encoding).encoding != "flat":
            return ""
        return flat_hint(message.topic, self.stream.encoding)

    def _serving(self) -> bool:
        """Whether there is a champion to serve, after loading what changed in the registry.

        No champion in a store that lost its data (Redis restarted empty): the store is
        restored from Kafka here, or by another process while this one serves the models it
        holds."""
        try:
            heads = self.registry.heads()
            guard = self.runtime.guard
            if heads.champion is None and not guard.ready():
                if not guard.ensure():
                    return self.lineup.champion is not None
                heads = self.registry.heads()
            serving = self.lineup.refresh(heads)
        except STORE_FAILURES as error:
            if self.lineup.champion is None:
                raise
            # No decision can change the models while Redis refuses (each is a Redis write):
            # serve the ones held, and follow the registry again once it answers.
            if not self._store_failing:
                log.warning(
                    "%s: the store refuses (%s); serving the models held", self.stream.name, error
                )
            self._store_failing = True
            return True
        self._store_failing = False
        return serving

    def _served(self, event: FeatureEvent, message: Message) -> bool:
        """Whether the service scored ``event`` itself: its mark matches its value and id."""
        return is_marked(self.signer, self.stream.name, event.id, message)

    def _score(
        self,
        events: list[FeatureEvent],
        read: list[Message],
        rejected: list[tuple[Message, str]],
    ) -> tuple[list[Record], list[FeatureEvent], dict[TopicPartition, int]]:
        """The predictions of every live model, the events served, and where to hold back.

        An event the champion cannot score (a category of another type than the ones it learnt,
        say, which the schema allows) joins ``rejected`` with the reason: failing the batch
        would read it again and fail again for ever. A challenger that cannot score an event
        just has no shadow prediction for it. Once the stream has published a model that
        learned, an event the champion answers with nothing (None: it has learned nothing) is
        not served: its partition is held at it (the returned offsets), until a champion that
        answers is loaded.
        """
        if not events:
            return [], [], {}
        # Scoring never changes its input: an event's own features do, unless some are missing.
        xs = [
            features if None not in features.values() else clean(features)
            for features in (event.features for event in events)
        ]
        failed: dict[int, str] = {}
        scored: list[tuple[int, str, list[Scored | None], float]] = []
        lineup = self.lineup
        roles = [(lineup.champion, "champion")] + [(v, "challenger") for v in lineup.challengers]
        for version, role in roles:
            assert version is not None
            started = time.perf_counter()
            answers = lineup.answers(version, xs, failed if role == "champion" else {})
            scored.append((version, role, answers, time.perf_counter() - started))
        rejected += [(read[index], reason) for index, reason in failed.items()]
        held = self._unanswered(scored[0][2], read) if lineup.published else {}
        left_out = set(failed)
        if held:
            left_out.update(
                index
                for index, message in enumerate(read)
                if message.offset >= held.get(message.topic_partition, _NEVER)
            )
        if left_out:
            events = [events[index] for index in range(len(events)) if index not in left_out]
        records: list[Record] = []
        for version, role, answers, seconds in scored:
            self._model_time.observe(seconds / len(xs), count=len(xs))
            if left_out:
                answers = [answers[i] for i in range(len(answers)) if i not in left_out]
            written = self.writer.records(events, answers, version, role, seconds * 1000 / len(xs))
            records += written
            self._predictions[role].inc(len(written))
        return records, events, held

    @staticmethod
    def _unanswered(answers: list[Scored | None], read: list[Message]) -> dict[TopicPartition, int]:
        """Per partition, the first offset the champion answered with None."""
        held: dict[TopicPartition, int] = {}
        for answer, message in zip(answers, read, strict=True):
            if answer is not None and answer[0] is None:
                partition = message.topic_partition
                held[partition] = min(held.get(partition, message.offset), message.offset)
        return held

    def _hold_back(
        self,
        held: dict[TopicPartition, int],
        messages: list[Message],
        rejected: list[tuple[Message, str]],
    ) -> tuple[list[Message], list[tuple[Message, str]]]:
        """Leave what ``held`` covers unread: the messages of this batch before it only, the
        consumer sought back to it."""
        for partition, offset in held.items():
            self.consumer.seek(partition, offset)
        held_by, self._held_by = self._held_by, self.lineup.revision()
        if held_by is None:  # once per hold, not every step
            log.warning(
                "%s: champion v%s answers nothing for events from %s on; holding them until a "
                "champion that learned is loaded",
                self.stream.name,
                self.lineup.champion,
                {f"{p.topic}[{p.partition}]": o for p, o in held.items()},
                extra={"stream": self.stream.name},
            )

        def kept(message: Message) -> bool:
            return message.offset < held.get(message.topic_partition, _NEVER)

        return [m for m in messages if kept(m)], [(m, r) for m, r in rejected if kept(m)]
