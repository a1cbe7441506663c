"""The learner: joins late labels to their events, learns, evaluates, and watches for drift.

One learner owns a stream's models (a :class:`~meander.store.lease.Lease` keeps it so). Each step:

1. apply lifecycle events from ``meander.models`` (a new challenger, a promotion, a rollback);
2. take a batch of labels from ``S.feedback`` in a deterministic merged order;
3. read ``S.events`` and ``S.predictions`` up to where they were when the labels were read,
   so that every label whose event was published before it finds its features;
4. per label: test every live model, update metrics, races and the drift detector, then train;
   labels for unknown or expired events, or of the wrong type, go to the dead-letter topic;
5. on drift, publish an alert and a retrain request carrying the offsets of the recent window;
6. now and then, share the models with the predictors (registry snapshots) and write a
   checkpoint: models, metrics, detectors, pending events and offsets, in one atomic write.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from meander import keys
from meander.bus import Message
from meander.clock import TimeWindow
from meander.component import Component
from meander.config import StreamConfig
from meander.consumers.learner.checkpoint import Checkpoints, initial_state
from meander.consumers.learner.labels import Labels
from meander.consumers.learner.learner_inputs import LearnerInputs
from meander.consumers.learner.learning import LearnerState
from meander.consumers.learner.lifecycle import LifecycleNotices, apply_model_event
from meander.deadletter import OUTAGES, DeadLetters
from meander.events import FeatureEvent, Prediction, decode_batch
from meander.exceptions import LeaseLost, StoreNotReady
from meander.models.inference import clean, prediction_problem
from meander.models.specs import build_model
from meander.runtime import Runtime
from meander.schema import Schema
from meander.store.lease import Lease
from meander.telemetry import LagSampler, Meter, Tally, forget_learner
from meander.telemetry.metrics import (
    FEEDBACK_EXPIRED,
    FEEDBACK_HELD,
    FEEDBACK_JOINED,
    FEEDBACK_UNMATCHED,
)

__all__ = ["Learner"]

log = logging.getLogger(__name__)
# A checkpoint waits this many times as long as the last one took: after a decision (work
# worth keeping soon), under a tenth of the learner's time; else under a fiftieth. A state that
# pickles in milliseconds is still checkpointed every checkpoint_seconds; an ARF(10) champion's
# (30-40 ms with its join and replay window) was, at 1 s, 39 us of every 1,160 us an event.
CHECKPOINT_SPACING = 9.0
ROUTINE_CHECKPOINT_SPACING = 49.0
# Labels a step takes at most. Each step also pays round trips that do not depend on how many
# labels it takes (the ends of events and predictions, the model events, the store writes that
# share the models): on a backlog, 2,000 a step spread them four times thinner than 500 did,
# and 4,000 twice as thin again. A step shares the models once at most, so on a backlog the
# predictors get a snapshot every 4,000 labels (publish_every is far fewer) until the learner
# has caught up; a step never waits for labels that are not there yet.
BATCH = 4_000


class Learner(Component):
    """Learns one stream's models from its labels; see the module docstring for a step."""

    name = "learner"

    def __init__(self, runtime: Runtime, stream: StreamConfig, *, batch: int = BATCH) -> None:
        self.runtime, self.stream, self.batch = runtime, stream, batch
        self.bus = runtime.bus
        self.lease = Lease(
            runtime.store,
            keys.lease(stream.name),
            stream.learning.lease_seconds,
            epochs=keys.epochs(stream.name),
            ready=runtime.guard.check,
            changelog=runtime.changelog,
            holder=runtime.settings.instance_id,
        )
        self.checkpoints = Checkpoints(runtime, stream, self.lease)
        self.registry = self.checkpoints.registry
        self.notices = LifecycleNotices(runtime.bus, stream, self.registry)
        self.dead = DeadLetters(runtime.bus, self.name)
        self.schema = Schema(stream)
        settings = runtime.settings
        self.times = TimeWindow(settings.max_clock_skew_seconds)
        self.labels = Labels(
            stream,
            self.notices,
            max_bytes=settings.max_event_bytes,
            max_skew=settings.max_clock_skew_seconds,
        )
        self.state: LearnerState | None = None
        # Importing River's modules for the model (on a loaded machine, seconds) happens now,
        # while a dead predecessor's lease runs out, not after the takeover.
        build_model(stream.model)
        self.meter = Meter(self.name, stream.name)
        self._since_checkpoint = 0
        self._since_publish = 0
        self._shared_labels = 0  # labels learned when the models were last shared
        self._unshared_since: float | None = None  # when more were first seen learned
        self._unsaved = False  # a decision made or followed since the last checkpoint
        self._checkpointed_at = -math.inf  # the first labels learned are checkpointed at once
        self._checkpoint_cost = 0.0  # seconds the last checkpoint took

    # -- the step ---------------------------------------------------------------------------

    def step(self, timeout: float = 0.0) -> int:
        try:
            held = self.lease.hold()
        except StoreNotReady as waiting:  # another process restores the store
            log.info("%s: %s", self.stream.name, waiting, extra={"stream": self.stream.name})
            held = False
        if not held:
            self._let_go()
            time.sleep(min(timeout, 0.5))
            return 0
        try:
            return self._step(timeout)
        except LeaseLost as lost:
            # Another learner took over: whatever this one did since its last write is its
            # successor's to redo, from the checkpoint.
            log.warning(
                "%s: %s; letting go", self.stream.name, lost, extra={"stream": self.stream.name}
            )
            self._let_go()
            return 0
        except Exception:
            # A step that failed midway (the broker gone, say) took labels off its reader and
            # learned some of them: going on would skip the rest. The next step resumes from
            # the checkpoint, as after a crash, and learns them again.
            self._let_go()
            raise

    def _step(self, timeout: float) -> int:
        state = self.state or self._resume()
        followed = self._follow(state)
        announced = self.notices.announced
        labels = self._readers.feedback.take(self.batch, timeout)
        handled = self._catch_up(state)
        self._learn(state, labels)
        self._count(state, len(labels), handled)
        handled += len(labels)
        self._since_checkpoint += len(labels)
        self._since_publish += len(labels)
        decided = bool(followed) or self.notices.announced != announced
        self._share(state, decided)
        return handled

    @property
    def handled_labels(self) -> int:
        """Labels read so far: learned or dead-lettered."""
        if self.state is None:
            return 0
        return self.state.labels + self.state.counts["rejected_feedback"]

    def working(self) -> bool:
        """Once it holds the stream's lease and resumed from its checkpoint."""
        return self.state is not None

    def close(self) -> None:
        if self.state is not None and self.lease.held:
            try:
                self.checkpoint()
            except LeaseLost as lost:
                log.warning("%s: not checkpointed on close: %s", self.stream.name, lost)
        self._let_go()
        self.lease.release()

    def checkpoint(self, *, urgent: bool = True) -> None:
        """Write the whole state now, in one atomic write; ``urgent`` copies it to Kafka at
        once (else at most every few seconds)."""
        if self.state is None:
            return
        started = time.monotonic()
        self.state.offsets = self._readers.offsets()
        self.checkpoints.save(self.state, urgent=urgent)
        self._since_checkpoint = 0
        self._unsaved = False
        self._checkpointed_at = time.monotonic()
        self._checkpoint_cost = self._checkpointed_at - started

    # -- internals ----------------------------------------------------------------------------

    def _resume(self) -> LearnerState:
        state = self.checkpoints.load()
        about = {"stream": self.stream.name}
        if state is None:
            state = initial_state(
                self.runtime, self.stream, self.registry, self.notices, self.lease
            )
            log.info(
                "%s: no checkpoint; starting with champion v%s",
                self.stream.name,
                state.champion,
                extra=about,
            )
        else:
            log.info("%s: resumed at %d labels", self.stream.name, state.labels, extra=about)
        window = self.stream.label_window  # the hold as configured now, whatever held before
        state.join.holding(window.hold_seconds, window.max_held)
        self._checkpointed_at = -math.inf
        self._readers = LearnerInputs(self.runtime, self.stream, state.offsets)
        feedback, name = self._readers.feedback, self.stream.name
        self._lag = LagSampler(self.name, feedback.consumer, positions=feedback.offsets)
        self._joined = Tally(FEEDBACK_JOINED.labels(name), state.labels)
        self._expired = Tally(FEEDBACK_EXPIRED.labels(name), state.join.expired)
        self._unmatched = Tally(FEEDBACK_UNMATCHED.labels(name), state.counts["unmatched"])
        self._held, self._held_count = FEEDBACK_HELD.labels(name), len(state.join.held)
        self._held.set(self._held_count)
        self.state = state
        return state

    def _let_go(self) -> None:
        if self.state is not None:
            self._lag.close()
            self._readers.close()
            self.state = None
            self.checkpoints.forget()
            forget_learner(self.stream.name)  # another learner owns the stream from now on

    def _follow(self, state: LearnerState) -> list[Any]:
        """Apply the lifecycle decisions of ``meander.models``; one that cannot be followed (it
        names a version the registry does not have, say) is dead-lettered with the reason."""
        refused: list[tuple[Message, str]] = []
        followed = self._readers.models_batch()
        for envelope in followed:
            try:
                apply_model_event(state, envelope.payload, self.registry, self.stream.name)
            except OUTAGES:
                raise
            except Exception as error:
                why = f"the learner cannot follow this model event: {type(error).__name__}: {error}"
                refused.append((envelope.message, why[:500]))
        self.dead.send(refused)
        return followed

    def _count(self, state: LearnerState, labels: int, caught_up: int) -> None:
        self.meter.read(labels)
        self.meter.consumed.inc(caught_up)  # the events and predictions it read to join them
        self._joined.update(state.labels)
        self._expired.update(state.join.expired)
        self._unmatched.update(state.counts["unmatched"])
        if len(state.join.held) != self._held_count:  # set when it changes (0.9 us a set)
            self._held_count = len(state.join.held)
            self._held.set(self._held_count)
        self._lag.sample()

    def _catch_up(self, state: LearnerState) -> int:
        """Read events and predictions up to their ends, into the join.

        Both ends are taken at one moment: each prediction was published after its event, so
        the events read include every event the predictions answer; taken at two moments,
        events first, a prediction of an event published in between would find no event to
        attach to, and be lost. Bad events are the predictor's to dead-letter; here they are
        only skipped."""
        predictions, events = self._readers.caught_up()
        read = [
            (envelope.payload, envelope.message)
            for envelope in decode_batch(events, layout=self.stream.encoding)[0]
            if isinstance(envelope.payload, FeatureEvent)
        ]
        times, horizon = self.times, self.times.horizon()
        stamps = [message.timestamp_ms for _, message in read]
        if not times.all_fit(stamps, [event.time for event, _ in read], horizon):
            read = [
                (event, message)
                for event, message in read
                if times.record_problem(message.timestamp_ms, event.time, horizon) is None
            ]
        problems = self.schema.violations([event.features for event, _ in read])
        add = state.join.add_event
        watched = state.answer_watched if state.watch is not None else None
        for (event, message), problem in zip(read, problems, strict=True):
            if problem is None:  # what the predictor dead-letters is never learned either
                features = clean(event.features)
                add(
                    event.id,
                    features,
                    timestamp_ms=message.timestamp_ms,
                    partition=message.partition,
                    offset=message.offset,
                )
                if watched is not None:
                    watched(event.id, features)
        for envelope in decode_batch(predictions)[0]:
            prediction = envelope.payload
            if not isinstance(prediction, Prediction) or self._unfit(prediction):
                continue  # the prediction index dead-letters it
            scored = (prediction.prediction, prediction.probabilities)
            label = state.join.add_prediction(
                prediction.event_id,
                version=prediction.version,
                role=prediction.role,
                prediction=scored,
            )
            if label is not None:
                state.late(label, prediction.version, prediction.role, scored)
        return len(events) + len(predictions)

    def _learn(self, state: LearnerState, messages: list[Message]) -> None:
        rejected = self.labels.learn(state, messages)
        if rejected:
            state.counts["rejected_feedback"] += len(rejected)
            self.dead.send(rejected)

    def _share(self, state: LearnerState, decided: bool) -> None:
        learning = self.stream.learning
        self._unsaved = self._unsaved or decided
        since = time.monotonic() - self._checkpointed_at
        # Work worth keeping is kept soon: the first labels after a start (a learner restarted
        # again and again must still get somewhere), a decision made or followed, else labels
        # every checkpoint_seconds. A checkpoint costs as much as the join holds (seconds with
        # labels far behind their events), so they are spaced by their own cost: the last one's
        # times CHECKPOINT_SPACING after a decision, ROUTINE_CHECKPOINT_SPACING otherwise. After
        # a crash, the labels since the checkpoint are learned again, to the same model.
        due = self._unsaved or self._since_checkpoint > 0
        due = due and (
            self._unsaved
            or since >= learning.checkpoint_seconds
            or self._since_checkpoint >= learning.checkpoint_every
        )
        spacing = CHECKPOINT_SPACING if self._unsaved else ROUTINE_CHECKPOINT_SPACING
        if due and since >= spacing * self._checkpoint_cost:
            self.checkpoint(urgent=self._unsaved)
        # A young model changes fastest: share it up to 16 times as often until it has learned
        # publish_every labels (with its age // 2 as the gap, the pace halves as it grows). The
        # youngest shared model sets the pace: a challenger's race scores the predictors' copy,
        # and a copy many labels behind (one warm-started on no labels answers nothing useful)
        # would lose a race its model is winning. After a decision at once: a promoted
        # challenger's registry copy is the one the trainer registered, which has not learned
        # what it learned in its race. After the checkpoint: a shared model is never ahead of
        # the last checkpoint for long.
        every = learning.publish_every
        age = min(
            (
                race.seen
                for (_, baseline), race in state.races.items()
                if baseline == state.champion
            ),
            default=state.labels,
        )
        age = min(age, state.labels)
        overdue = self._overdue(state)
        if overdue or decided or self._since_publish >= min(every, max(every // 16, age // 2)):
            # the races with them; a big model may be left for later (its size sets its pace)
            whole = self.checkpoints.publish_models(state, decided=decided, overdue=overdue)
            self._since_publish = 0
            if whole:
                self._shared_labels, self._unshared_since = state.labels, None
        elif state.races:
            self.checkpoints.write_races(state)

    def _overdue(self, state: LearnerState) -> bool:
        """Whether labels learned ``publish_seconds`` ago are not shared yet. On a quiet stream
        they would wait for publish_every more labels, for ever: the few that came, a held
        label whose event came after the last label, those learned before a restart."""
        bound = self.stream.learning.publish_seconds
        if bound is None or state.labels == self._shared_labels:
            return False
        now = time.monotonic()
        if self._unshared_since is None:
            self._unshared_since = now
        return now - self._unshared_since >= bound

    def _unfit(self, prediction: Prediction) -> bool:
        """Whether a prediction does not fit the stream, so that no metric may take it."""
        return prediction_problem(prediction, self.stream) is not None
