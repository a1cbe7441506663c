"""The learner's side of the model lifecycle: what it announces, and how it follows decisions.

It announces drift (an alert, and a retrain request carrying the offsets of the recent labelled
window, so the trainer can replay exactly those events) and warnings. It follows the trainer's
decisions from ``meander.models``: a trained challenger joins the race, a promotion swaps the
champion and starts the rollback watch, a rejection or rollback drops a model. It follows a
person's promotion or rollback (the API's, ``evidence.manual``) the same way, except that no
rollback watch follows a manual promotion: the trainer never judges one.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any

from meander import topics
from meander.bus import Bus
from meander.config import StreamConfig
from meander.consumers.learner.learning import LearnerState
from meander.events import Alert, ModelEvent, decision, encode
from meander.models.registry import Registry
from meander.models.unannounced import Announcement
from meander.telemetry import count_published

__all__ = ["LifecycleNotices", "apply_model_event", "replay_ranges"]

log = logging.getLogger(__name__)
SOURCE = "/meander/learner"
_ANNOUNCEMENTS = uuid.UUID("6d65616e-6465-7200-8000-6c6561726e65")  # uuid5 namespace
MAX_FOLLOW_UPS = 2  # retrain requests after one drift whose challengers all lost


class LifecycleNotices:
    """Publishes what the learner finds, for one stream."""

    def __init__(self, bus: Bus, stream: StreamConfig, registry: Registry) -> None:
        self.bus, self.stream, self.registry = bus, stream, registry
        self.announced = 0  # alerts and requests published so far

    def drift(self, state: LearnerState, event_id: str, error: float = float("nan")) -> None:
        """Alert, and ask for a retrain; ``error`` is the champion's error on the label that
        made the detector fire."""
        detector = state.detector
        width = int(getattr(detector, "width", 0)) or None
        alert_id = announcement_id(self.stream.name, "concept_drift", state.champion, event_id)
        name = type(detector).__name__
        error = _reported(detector, error)
        alert = Alert(
            kind="concept_drift",
            stream=self.stream.name,
            severity="critical",
            statistic=name.lower(),
            value=error,
            model=self.stream.name,
            version=state.champion,
            window=width,
            at_event=event_id,
            message=(
                f"{name} found a change in the error of champion v{state.champion} after "
                f"{state.labels} labels; recent error {error:.3f} over {width or '?'} labels"
            ),
        )
        announced: list[Alert | ModelEvent] = [alert]
        # Challengers that raced since before the detector's window began (or for as long as a
        # race is judged on) learned the concept that has just passed: unless they are ahead,
        # the request asks the trainer to end their races and start afresh.
        preempt = _stale(state, width, self.stream.promotion.min_samples)
        if self._may_request(state) or preempt:
            since = min(_since_change(state, width), self._window(state))
            reason = f"concept drift in the error of champion v{state.champion}"
            request = self._request(state, alert_id, since, event_id, reason, preempt=preempt)
            announced.append(request)
        # Also during a younger race: if its challengers lose, the follow-up retrains after this
        # drift.
        state.drift_at, state.follow_ups = state.labels, 0
        self._publish(announced, alert_id)

    def follow_up(self, state: LearnerState, event_id: str, *, still_behind: bool = False) -> None:
        """Ask again once every challenger of a drift lost, or once the champion still errs
        clearly more than before the drift: by now the labels since the drift are enough to
        warm-start a model on the new concept alone."""
        state.follow_up_at = None
        if state.drift_at is None or self._racing(state):
            return
        state.follow_ups += 1
        ago = state.labels - state.drift_at
        since = min(ago, self._window(state))
        why = (
            f"champion v{state.champion} still errs more than before the drift"
            if still_behind
            else f"no challenger beat champion v{state.champion} after the drift"
        )
        reason = f"{why} {ago} labels ago; retraining on the labels since"
        self._publish([self._request(state, None, since, event_id, reason)])

    def tune(self, state: LearnerState, event_id: str, *, again: bool = False) -> None:
        """Ask for the candidates to race the first champion, on every label so far: the
        stream's spec is a guess made before any data came, and a drift may be long in coming.
        ``again``: ask once more, on the latest labels kept, for the models that had too few
        labels to win the first time."""
        window = len(state.recent)
        reason = (
            f"tuning again: champion v{state.champion} has learned {state.labels} labels and no "
            f"drift was found; the candidates race it, warm-started on the latest {window}"
            if again
            else f"first tuning: champion v{state.champion} has learned {state.labels} labels; "
            "the candidates race it"
        )
        self._publish(
            [self._request(state, None, window, event_id, reason, tuning=True, window=window)]
        )

    def diverged(self, state: LearnerState, event_id: str) -> None:
        """Alert that the champion answers no number (NaN or an infinity: its weights or
        variances overflowed, for good), and ask for a retrain. The predictors dead-letter its
        events until a challenger, which wins every event it answers, replaces it."""
        state.diverged = state.champion
        alert_id = announcement_id(self.stream.name, "diverged", state.champion, event_id)
        alert = Alert(
            kind="performance",
            stream=self.stream.name,
            severity="critical",
            statistic="diverged",
            value=1.0,
            model=self.stream.name,
            version=state.champion,
            at_event=event_id,
            message=(
                f"champion v{state.champion} answers no number (NaN or an infinity) after "
                f"{state.labels} labels: it has diverged, and its events are dead-lettered "
                "until a challenger replaces it"
            ),
        )
        announced: list[Alert | ModelEvent] = [alert]
        if self._may_request(state):
            reason = f"champion v{state.champion} has diverged (it answers no number)"
            since = self._window(state)
            announced.append(self._request(state, alert_id, since, event_id, reason))
        self._publish(announced, alert_id)

    def warning(self, state: LearnerState, event_id: str, error: float = float("nan")) -> None:
        window = self.stream.learning.replay_window
        if state.warned_at is not None and state.labels - state.warned_at < window:
            return
        state.warned_at = state.labels
        alert = Alert(
            kind="concept_drift_warning",
            stream=self.stream.name,
            severity="warning",
            statistic=type(state.detector).__name__.lower(),
            value=_reported(state.detector, error),
            model=self.stream.name,
            version=state.champion,
            at_event=event_id,
            message=f"the error of champion v{state.champion} may be changing",
        )
        self._publish([alert])

    def promoted(
        self, version: int, previous: int | None, reason: str, evidence: dict[str, Any]
    ) -> None:
        self._publish([decision(self.stream.name, "promoted", version, previous, reason, evidence)])

    def queued_promotion(self, version: int, reason: str) -> Announcement:
        """The announcement :meth:`promoted` makes of a first champion, with the same id, to
        queue in the promotion's transaction (:mod:`meander.models.unannounced`)."""
        event = decision(self.stream.name, "promoted", version, None, reason, {})
        return Announcement.of(event, source=SOURCE, id=_id_of(self.stream.name, event))

    def _window(self, state: LearnerState) -> int:
        """The latest labels a retrain replays: the replay window, or as many as there are."""
        return min(len(state.recent), self.stream.learning.replay_window)

    @staticmethod
    def _racing(state: LearnerState) -> bool:
        return any(b == state.champion for (_, b) in state.races)

    def _may_request(self, state: LearnerState) -> bool:
        if self._racing(state):
            return False
        if state.retrain_requested_at is None:
            return True
        # No answer after a long while (no trainer running?): ask again.
        return state.labels - state.retrain_requested_at > 5 * self.stream.learning.replay_window

    def _request(
        self,
        state: LearnerState,
        alert_id: str | None,
        since: int,
        event_id: str,
        reason: str,
        *,
        tuning: bool = False,
        preempt: bool = False,
        window: int | None = None,
    ) -> ModelEvent:
        """A retrain request whose replay is the latest ``window`` labelled events (the replay
        window when None)."""
        window = self._window(state) if window is None else window
        state.retrain_requested_at = state.labels
        marks = ({"tuning": True} if tuning else {}) | ({"preempt": True} if preempt else {})
        return ModelEvent(
            action="retrain_requested",
            stream=self.stream.name,
            model=self.stream.name,
            version=state.champion,
            at_event=event_id,
            reason=reason,
            evidence={
                "alert": alert_id,
                "labels": state.labels,
                "window": window,
                "since_change": since,
                "replay": replay_ranges(state, window),
            }
            | marks,
        )

    def _publish(self, announced: list[Alert | ModelEvent], alert_id: str | None = None) -> None:
        """Publish alerts and decisions, then count and log them.

        Each one's CloudEvents id is derived from what it says (:func:`announcement_id`): a
        learner that resumes from a checkpoint learns the same labels in the same order and
        announces the same drift at the same label again, with the same id, which subscribers
        then see once (the drift alert's id is ``alert_id``, which a retrain request refers to).
        """
        records = [
            encode(
                topics.ALERTS if isinstance(payload, Alert) else topics.MODELS,
                payload,
                source=SOURCE,
                subject=self.stream.name,
                event_id=_id_of(self.stream.name, payload),
            )
            for payload in announced
        ]
        self.bus.publish(records)
        self.announced += len(records)
        count_published("learner", announced, log, self.stream.name)


def announcement_id(stream: str, what: str, version: int | None, at_event: str | None) -> str:
    """The CloudEvents id of what the learner announces about ``version`` at label
    ``at_event``: the same announcement gets the same id, whichever run of the learner makes it.

    >>> announcement_id("fraud", "concept_drift", 3, "tx-17") == announcement_id(
    ...     "fraud", "concept_drift", 3, "tx-17")
    True
    >>> len(announcement_id("fraud", "concept_drift", 3, "tx-17"))
    32
    """
    return uuid.uuid5(_ANNOUNCEMENTS, f"{stream}/{what}/{version}/{at_event}").hex


def _id_of(stream: str, payload: Alert | ModelEvent) -> str:
    if isinstance(payload, Alert):
        return announcement_id(stream, payload.kind, payload.version, payload.at_event)
    # Two requests at one label (a drift and a follow-up) differ by their reason.
    what = f"{payload.action}/{payload.reason}"
    return announcement_id(stream, what, payload.version, payload.at_event)


def _reported(detector: Any, error: float) -> float:
    """An alert's value: the detector's estimate of the error or, for a detector that keeps
    none (Page-Hinkley), the error it fired at. A NaN would be encoded as null, and no reader
    accepts an alert whose value is not a number."""
    estimate = getattr(detector, "estimation", None)
    return float(estimate) if estimate is not None else float(error)


def _stale(state: LearnerState, width: int | None, judged: int) -> bool:
    """Whether a challenger racing the champion started before the drift detector's window
    began, or has raced as long as a race is ``judged`` on, so that it was warm-started on the
    concept the drift ended, and is not ahead of the champion on its race's latest events (one
    that is ahead has learned what the champion has not: its race goes on).

    ADWIN's window after a change still holds much of the concept before it (a change 48
    labels old left 112 to 512 labels in it): challengers trained a few hundred labels before
    the change raced on that concept to their race's end, up to 1,000 events, while the
    champion erred and no fresh challenger was asked for."""
    return any(
        baseline == state.champion and race.seen > min(width or 0, judged) and race.gain <= 0
        for (_, baseline), race in state.races.items()
    )


def _since_change(state: LearnerState, width: int | None) -> int:
    """How many of the latest labels likely come after the change: those since the warning
    that preceded the drift, when it came within the detector's window; else none (the
    detector caught the change at once, and its window is mostly the old concept)."""
    since = 0
    if state.warned_at is not None and state.labels - state.warned_at <= (width or 0):
        since = state.labels - state.warned_at
    return min(since, len(state.recent))


def replay_ranges(state: LearnerState, window: int) -> dict[str, dict[str, list[int]]]:
    """Per partition, the half-open offset ranges of the last ``window`` labelled events and
    of their labels."""
    recent = list(state.recent)[-window:]
    events: dict[int, list[int]] = defaultdict(lambda: [2**62, -1])
    labels: dict[int, list[int]] = defaultdict(lambda: [2**62, -1])
    for event_partition, event_offset, label_partition, label_offset in recent:
        _widen(events[event_partition], event_offset)
        _widen(labels[label_partition], label_offset)
    return {
        "events": {str(p): [lo, hi + 1] for p, (lo, hi) in sorted(events.items())},
        "feedback": {str(p): [lo, hi + 1] for p, (lo, hi) in sorted(labels.items())},
    }


def _widen(bounds: list[int], offset: int) -> None:
    bounds[0] = min(bounds[0], offset)
    bounds[1] = max(bounds[1], offset)


def apply_model_event(state: LearnerState, event: Any, registry: Registry, stream: str) -> None:
    """Follow one decision from ``meander.models``."""
    if not isinstance(event, ModelEvent) or event.stream != stream or event.version is None:
        return
    version = event.version
    unheld = _unheld(state, event, registry)
    if unheld is not None:
        log.warning(
            "%s: %s v%s ignored: %s",
            stream,
            event.action,
            version,
            unheld,
            extra={"stream": stream},
        )
        return
    if event.action == "challenger_trained" and version not in state.models:
        state.add_challenger(version, registry.load(version)[0])
    elif event.action == "rejected":
        state.drop(version)
        if state.drift_at is not None and state.follow_ups < MAX_FOLLOW_UPS:
            state.follow_up_at = state.labels  # once no challenger is left racing
    elif event.action == "promoted" and version != state.champion:
        model = None if version in state.models else registry.load(version)[0]
        state.promote(version, model)
        if event.evidence.get("manual") is True:
            _settle_manual(state)
    elif event.action == "rolled_back" and version != state.champion:
        model = None if version in state.models else registry.load(version)[0]
        state.roll_back(version, event.previous_version or state.champion, model)
        if event.evidence.get("manual") is True:
            _settle_manual(state)
    elif event.action == "validated" and event.evidence.get("stage") == "rollback_window":
        state.end_watch()
    log.info("%s: followed %s v%s", stream, event.action, version, extra={"stream": stream})


def _unheld(state: LearnerState, event: ModelEvent, registry: Registry) -> str | None:
    """Why the registry does not hold the decision ``event`` announces; None when it does.

    An announcement made again after a later decision, or one any client wrote, is not
    followed: predictors serve the registry's champion and the trainer judges the races of the
    registry's challengers, and a decision that changed them is announced after it. A version
    the registry does not have at all is refused (RegistryError): dead-lettered."""
    version = event.version
    if version is None:
        return None
    if event.action in ("promoted", "rolled_back") and version != state.champion:
        if registry.champion() != version:
            registry.get(version)
            return "the registry's champion is another"
    elif event.action == "rejected" and version in state.models:
        return "the registry still races it" if version in registry.challengers() else None
    return None


def _settle_manual(state: LearnerState) -> None:
    """After a manual promotion or rollback, keep only the champion and the challengers racing
    it. The trainer watches only its own promotions, so a watch race here would never be
    judged; and the replaced champion, or the one a cut-short watch held, would learn forever
    for nothing.
    """
    state.end_watch()
    state.watch_until = None
    racing = {challenger for (challenger, _) in state.races}
    for version in set(state.models) - racing - {state.champion}:
        state.drop(version)
