"""The trainer: answers retrain requests with challengers, and judges their races.

On a retrain request (from ``meander.models``) it replays the recent labelled window, warm-starts
the candidates on it (:mod:`meander.consumers.trainer.retraining`) and registers the best as
challengers, which the predictors then score in shadow and the learner trains and races against the
champion on the same live events. Every step its validation gate
(:mod:`~meander.consumers.trainer.gate`) judges the races: promote, reject, or wait, and watches a
new champion against the one it replaced. Each decision is written to the registry with its
announcement, which the trainer then publishes on ``meander.models`` with its evidence.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import partial

from meander import topics
from meander.bus import Message, Outbox, next_offsets
from meander.component import Component, rewound_on_failure
from meander.config import StreamConfig
from meander.consumers.trainer.gate import SOURCE, Gate
from meander.consumers.trainer.retraining import (
    Candidate,
    candidates,
    replay_window,
    request_problem,
    within_reach,
)
from meander.deadletter import OUTAGES, DeadLetters
from meander.events import ModelEvent, decision, decode_batch, encode
from meander.models.registry import Registry
from meander.models.unannounced import Announcement, Herald
from meander.models.validation import Verdict
from meander.models.versions import ModelVersion, config_hash
from meander.runtime import Runtime
from meander.telemetry import LagSampler, Meter, count_published

__all__ = ["Trainer"]

log = logging.getLogger(__name__)
_TRAINED = uuid.UUID("6d65616e-6465-7200-8000-747261696e65")  # uuid5 namespace


class Trainer(Component):
    """Retraining and the validation gate for one stream."""

    name = "trainer"

    def __init__(self, runtime: Runtime, stream: StreamConfig, *, group: str | None = None) -> None:
        self.runtime, self.stream = runtime, stream
        self.registry = Registry.of(runtime, stream)
        self.consumer = runtime.bus.subscribe(
            [topics.MODELS], group or f"meander-trainer-{stream.name}"
        )
        self.outbox = Outbox(runtime.bus)
        self.gate = Gate(runtime, stream, self.registry)
        self.meter = Meter(self.name, stream.name)
        self.lag = LagSampler(self.name, self.consumer)
        self.dead = DeadLetters(runtime.bus, self.name)
        self.herald = Herald(self.registry.unannounced, self.outbox)

    def step(self, timeout: float = 0.0) -> int:
        guard = self.runtime.guard
        if not guard.ready() and not guard.ensure():
            # Redis lost its data and another process restores it: a request read now would
            # find no champion and be dropped.
            time.sleep(min(timeout, 0.2))
            return 0
        self.runtime.changelog.settle()
        messages = self.consumer.consume(100, timeout)
        self.meter.read(len(messages))
        self.lag.sample()
        if messages:
            with rewound_on_failure(self.consumer, messages):
                self._answer(messages)
        judged = self.gate.judge()
        self._announce()
        if messages:
            self.consumer.commit(next_offsets(messages))
        return len(messages) + judged

    def working(self) -> bool:
        """Once its group gave it partitions."""
        return bool(self.consumer.assignment())

    def _answer(self, messages: list[Message]) -> None:
        """Answer the retrain requests for this stream; a request that cannot be answered goes
        to the dead-letter topic with the reason (what cannot be decoded is the notifier's)."""
        refused: list[tuple[Message, str]] = []
        for envelope in decode_batch(messages)[0]:
            event = envelope.payload
            if not (
                isinstance(event, ModelEvent)
                and event.stream == self.stream.name
                and event.action == "retrain_requested"
            ):
                continue
            problem = request_problem(self.runtime.bus, self.stream, event)
            if problem is None:
                problem = self._try_retrain(event, envelope.id)
            if problem is not None:
                refused.append((envelope.message, problem))
        self.dead.send(refused)

    def _try_retrain(self, request: ModelEvent, request_id: str) -> str | None:
        try:
            self._retrain(request, request_id)
        except OUTAGES:
            raise  # not the request's fault: read it again
        except Exception as error:
            log.exception("%s: retrain request %s failed", self.stream.name, request_id)
            return f"retrain request not answered: {type(error).__name__}: {error}"[:500]
        return None

    def close(self) -> None:
        self.lag.close()
        self.consumer.close()

    # -- retraining ---------------------------------------------------------------------------

    def _retrain(self, request: ModelEvent, request_id: str) -> None:
        champion = self.registry.champion()
        if champion is not None and request.version == champion and request.evidence.get("preempt"):
            self._preempt(champion, request, request_id)
        if champion is not None and request.version == champion:
            registered = self._registered_for(request_id)
            if registered:
                # The request is read again after a step failed (an outage, a kill) between
                # registering its challengers and announcing them: announce what was
                # registered, or nobody would race them, and no retrain would come while they
                # stand. An announcement made already has the same id.
                self._publish([self._trained(entry, champion, request) for entry in registered])
                return
        if champion is None or request.version != champion or self.registry.challengers():
            log.info(
                "%s: request %s is stale or a race runs; skipped",
                self.stream.name,
                request_id,
                extra={"stream": self.stream.name, "event_id": request.at_event},
            )
            return
        replay = request.evidence.get("replay", {})
        window = replay_window(self.runtime.bus, self.stream, replay)
        since = int(request.evidence.get("since_change", len(window)))
        tuning = request.evidence.get("tuning") is True
        ranked = candidates(self.stream, self.registry, window, champion, since, fresh=not tuning)
        # A copy keeps its place in the ranking, and races as its twin, once.
        chosen = [c for c in ranked[: self.stream.learning.max_challengers] if not c.copy]
        chosen = within_reach(chosen, self.stream.task, min(since, len(window)))
        entries = self._register_all(chosen, champion, request, request_id, len(window))
        self._publish([self._trained(entry, champion, request) for entry in entries])

    def _registered_for(self, request_id: str) -> list[ModelVersion]:
        """The challengers registered in answer to ``request_id``."""
        entries = [self.registry.get(version) for version in self.registry.challengers()]
        return [entry for entry in entries if entry.cause.get("request") == request_id]

    def _register_all(
        self,
        chosen: list[Candidate],
        champion: int,
        request: ModelEvent,
        request_id: str,
        seen: int,
    ) -> list[ModelVersion]:
        """Register each candidate; one that cannot be registered (a model that cannot be
        pickled, say) is left out, and raises only when none could be."""
        entries: list[ModelVersion] = []
        failure: Exception | None = None
        for candidate in chosen:
            try:
                entries.append(self._register(candidate, champion, request, request_id, seen))
            except OUTAGES:
                raise
            except Exception as error:
                failure = failure or error
                log.exception(
                    "%s: candidate %s not registered", self.stream.name, candidate.spec[:200]
                )
        if failure is not None and not entries:
            raise failure
        return entries

    def _preempt(self, champion: int, request: ModelEvent, request_id: str) -> None:
        """End the races of challengers trained before a drift the request reports: they
        learned the concept that has passed, and fresh challengers take their place. One ahead
        of the champion on its race's latest events races on (no retrain while it does)."""
        reason = (
            f"Reject: a concept drift came after this challenger was trained ({request.reason} "
            f"at {request.at_event}); fresh challengers replace it."
        )
        evidence: dict[str, float | int | str] = {"stage": "preempted", "request": request_id}
        for challenger in self.registry.challengers():
            race = self.gate.race(challenger, champion)
            if race is None or race.gain <= 0:
                self.gate.reject(challenger, Verdict("reject", reason, evidence))

    def _register(
        self, candidate: Candidate, champion: int, request: ModelEvent, request_id: str, seen: int
    ) -> ModelVersion:
        """Register one warm-started candidate as a challenger."""
        training = {
            "replay": request.evidence.get("replay", {}),
            "window": len(candidate.window) if candidate.window is not None else seen,
            "origin": candidate.origin,
            "window_score": candidate.score,
            "source_version": candidate.source_version,
        }
        cause = {
            "request": request_id,
            "alert": request.evidence.get("alert"),
            "reason": request.reason,
        }
        entry = self.registry.register(
            candidate.model,
            spec=candidate.spec,
            parent=champion,
            cause=cause,
            training=training,
            config_hash=config_hash(self.stream),
        )
        self.registry.add_challenger(entry.version, reason=f"{candidate.origin} warm start")
        return entry

    def _trained(self, entry: ModelVersion, champion: int, request: ModelEvent) -> ModelEvent:
        """The event announcing ``entry``, a challenger registered for ``request``."""
        training = entry.training
        reason = f"{training['origin']} {entry.spec}, warm-started on {training['window']} labels"
        evidence = {k: v for k, v in training.items() if k != "replay" and v is not None}
        return decision(
            self.stream.name,
            "challenger_trained",
            entry.version,
            champion,
            reason,
            evidence | {"request": entry.cause["request"]},
            request.at_event,
        )

    def _trained_id(self, event: ModelEvent) -> str:
        """A challenger's announcement has one id however often it is made: a request read
        again announces its challengers again."""
        request = event.evidence.get("request")
        return uuid.uuid5(_TRAINED, f"{self.stream.name}/{request}/{event.version}").hex

    def _announce(self) -> None:
        """Publish every decision the registry holds unannounced (this trainer's, the
        service's, one a trainer killed before the broker took it made) under its own id;
        drop them once the broker has them."""
        self.herald.publish(self.registry.unannounced.pending(), self._counted)

    def _counted(self, announcement: Announcement) -> Callable[[], None]:
        made = [announcement.event]
        return partial(count_published, self.name, made, log, self.stream.name)

    def _publish(self, events: list[ModelEvent]) -> None:
        """Announce challengers registered (the decisions are :meth:`_announce`'s)."""
        if events:
            records = [
                encode(
                    topics.MODELS,
                    e,
                    source=SOURCE,
                    subject=self.stream.name,
                    event_id=self._trained_id(e),
                )
                for e in events
            ]
            self.outbox.add(
                records, lambda: count_published(self.name, events, log, self.stream.name)
            )
