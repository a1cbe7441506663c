"""A step's labels, taken as a batch: decoded, checked and joined at once, scored at once, then
learned one at a time.

What the predictors served for an event is theirs, not any model's: all of a step's labels are
scored against it first, each metric's updates in one call
(:meth:`~meander.consumers.learner.learning.LearnerState.score_many`). What depends on the
models as they learn stays per label, in the order the labels came: the races (a version that
served nothing answers as it stands), the drift detector and what it sets off, and
``learn_one``, which River has one label at a time. A step then leaves the state exactly as
taking its labels one by one would (``tests/consumers/learner/test_labels.py`` holds it to that).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from meander import topics
from meander.bus import Message
from meander.clock import TimeWindow
from meander.config import StreamConfig
from meander.consumers.learner.learning import LearnerState, Outcome, lagging
from meander.consumers.learner.lifecycle import MAX_FOLLOW_UPS, LifecycleNotices
from meander.deadletter import OUTAGES
from meander.events import Feedback, decode_batch
from meander.models.inference import label_problem
from meander.schema import shown

__all__ = ["Labels"]

Rejected = list[tuple[Message, str]]


class Joined(NamedTuple):
    """A step's labels that found their event, as columns (an object per label would outlive
    it, and make the garbage collector walk the heap)."""

    features: list[dict[str, Any]]
    labels: list[Any]
    served: list[dict[tuple[int, str], Any]]
    where: list[tuple[int, int, int, int]]  # event partition and offset, label's
    event_ids: list[str]
    messages: list[Message]


class Labels:
    """Learns a step's labels for one stream; what it cannot learn it hands back with the reason."""

    def __init__(
        self, stream: StreamConfig, notices: LifecycleNotices, *, max_bytes: int, max_skew: float
    ) -> None:
        self.stream, self.notices, self.max_bytes = stream, notices, max_bytes
        self.times = TimeWindow(max_skew)
        learning = stream.learning
        # The label counts at which to ask for a first tuning and for a second one (None:
        # never), checked per label.
        tunes = learning.tune_first and bool(stream.candidates)
        self.tune_at = min(learning.tune_after, learning.replay_window) if tunes else None
        again = stream.tune_again_at
        self.tune_again_at = again if tunes and again > (self.tune_at or 0) else None

    def learn(self, state: LearnerState, messages: list[Message]) -> Rejected:
        """Learn what ``messages`` hold; returns the messages that could not be learned."""
        given_up: Rejected = []
        if state.join.held:  # labels read before their event: those it came for go first
            messages, given_up = self._held(state, messages)
        labels, rejected = self._decoded(messages)
        rejected[:0] = given_up
        checked = len(rejected)
        joined = self._joined(state, labels, rejected)
        errors, answers = state.score_many(joined.labels, joined.served)
        recent, watch, tune_at, again_at, judge, learn = (
            state.recent,
            self._watch,
            self.tune_at,
            self.tune_again_at,
            state.judge,
            state.learn,
        )
        failed: Rejected = []
        for i, (x, y, error) in enumerate(zip(joined.features, joined.labels, errors, strict=True)):
            try:
                outcome = judge(x, y, answers[i] or {}, error)
                learn(x, y)
            except OUTAGES:
                raise
            except Exception as problem:  # validation lets through nothing known to fail
                why = f"label {shown(y)} cannot be learned: {type(problem).__name__}: {problem}"
                failed.append((joined.messages[i], why[:500]))
                continue
            state.last_event = joined.event_ids[i]
            recent.append(joined.where[i])
            # Most labels set off nothing: only these can (see _watch).
            if (
                outcome.diverged
                or outcome.drift
                or outcome.warning
                or state.labels == tune_at
                or state.labels == again_at
                or state.follow_up_at is not None
                or state.error_before is not None
            ):
                watch(state, outcome, joined.event_ids[i])
        if failed:  # dead-lettered in the order the labels came, as one at a time would
            # (a held label given up for a newer one was read before them all)
            at = {id(message): i for i, message in enumerate(messages)}
            rejected[checked:] = sorted(
                rejected[checked:] + failed, key=lambda r: at.get(id(r[0]), -1)
            )
        return rejected

    def _held(self, state: LearnerState, messages: list[Message]) -> tuple[list[Message], Rejected]:
        """The step's labels after the held ones whose event has come, and the held ones given
        up (their time is up), with the reason."""
        found, expired = state.join.ready()
        state.counts["unmatched"] += len(expired)
        given_up = [(message, self._unknown(event_id)) for event_id, message in expired]
        return (found + messages if found else messages), given_up

    def _decoded(self, messages: list[Message]) -> tuple[list[tuple[Feedback, Message]], Rejected]:
        envelopes, rejected = decode_batch(
            messages, max_bytes=self.max_bytes, layout=self.stream.encoding
        )
        labels: list[tuple[Feedback, Message]] = []
        for envelope in envelopes:
            if isinstance(envelope.payload, Feedback):
                labels.append((envelope.payload, envelope.message))
            else:
                wrong = f"expected {Feedback.type} on {envelope.message.topic}, got {envelope.type}"
                rejected.append((envelope.message, wrong))
        return labels, rejected

    def _joined(
        self, state: LearnerState, labels: list[tuple[Feedback, Message]], rejected: Rejected
    ) -> Joined:
        """The labels that fit and found their event, in order; the others into ``rejected``."""
        times, horizon = self.times, self.times.horizon()
        # Most batches are within the time window as a whole: then no label needs its own check.
        timed = not times.all_fit(
            [message.timestamp_ms for _, message in labels],
            [feedback.observed_at for feedback, _ in labels],
            horizon,
        )
        task, classes = self.stream.task, self.stream.label_classes
        problems: dict[tuple[type, Any], str | None] = {}  # a step's labels are few values
        take, joined = state.join.take, Joined([], [], [], [], [], [])
        for feedback, message in labels:
            label = feedback.label
            try:
                problem = problems[type(label), label]
            except KeyError:
                problem = problems[type(label), label] = label_problem(label, task, classes)
            except TypeError:  # not hashable
                problem = label_problem(label, task, classes)
            if problem is None and timed:
                problem = times.record_problem(message.timestamp_ms, feedback.observed_at, horizon)
            if problem is not None:
                rejected.append((message, problem))
                continue
            entry = take(feedback.event_id, label)
            if entry is None:  # its event may not be on the topic yet: held for it
                for event_id, given_up in state.join.hold(
                    feedback.event_id, message, timestamp_ms=message.timestamp_ms
                ):
                    rejected.append((given_up, self._unknown(event_id)))
                    state.counts["unmatched"] += 1
                continue
            joined.features.append(entry.features)
            joined.labels.append(label)
            joined.served.append(entry.served)
            joined.where.append((entry.partition, entry.offset, message.partition, message.offset))
            joined.event_ids.append(feedback.event_id)
            joined.messages.append(message)
        return joined

    def _watch(self, state: LearnerState, outcome: Outcome, event_id: str) -> None:
        if outcome.diverged and state.diverged != state.champion:
            self.notices.diverged(state, event_id)
        elif outcome.drift:
            self.notices.drift(state, event_id, outcome.error)
        elif outcome.warning:
            self.notices.warning(state, event_id, outcome.error)
        elif self._tunes(state):
            self.notices.tune(state, event_id)
        elif self._tunes_again(state):
            self.notices.tune(state, event_id, again=True)
        elif state.follow_up_at is not None and state.settled():
            self.notices.follow_up(state, event_id)
        elif (
            state.error_before is not None
            and state.follow_ups < MAX_FOLLOW_UPS
            and lagging(state, self.stream.learning.replay_window, self.stream.task)
        ):
            self.notices.follow_up(state, event_id, still_behind=True)

    def _tunes(self, state: LearnerState) -> bool:
        """True at the first champion's tune_after-th label (its replay_window-th, if fewer),
        when the stream has candidates and nothing has been asked of the trainer yet."""
        return (
            state.labels == self.tune_at
            and state.drift_at is None
            and state.retrain_requested_at is None
            and not state.races
        )

    def _tunes_again(self, state: LearnerState) -> bool:
        """True at the tune_again_after-th label when no drift was found and nothing races:
        the first tuning's race came too early for a model that needs more labels."""
        return state.labels == self.tune_again_at and state.drift_at is None and not state.races

    def _unknown(self, event_id: str) -> str:
        window = self.stream.label_window
        return (
            f"no event {event_id!r} is waiting for a label: unknown, already labelled, older "
            f"than the label window ({window.ttl_seconds:g} s, {window.max_pending} events), "
            f"or not on {topics.events(self.stream.name)} within {window.hold_seconds:g} s of "
            f"its label ({window.max_held} labels wait at most): send it again once the event "
            "is published"
        )
