"""What a learner knows and how it learns one label: the part of the learner without I/O.

Each labelled event is first used to judge what the predictors served for it, before any
model learns from it: prequential evaluation of the live service. The champion and the
challengers it scored in shadow answered the same event, so their races are paired; the
champion's error stream feeds the concept drift detector. Then every live model (champion,
challengers, and the champion a promotion just replaced) learns the event. All of it is one
picklable :class:`LearnerState`, which the learner checkpoints in one write.

>>> from river import drift, tree
>>> state = LearnerState.start("binary", champion=1, model=tree.HoeffdingTreeClassifier(),
...                            detector=drift.ADWIN(), ttl_seconds=60, max_pending=100)
>>> for i in range(4):
...     served = {(1, "champion"): (True, None)}  # what a predictor answered
...     _ = state.evaluate({"x": i % 2}, i % 2 == 0, served)
...     state.learn({"x": i % 2}, i % 2 == 0)
>>> state.labels, state.metrics[1].report()["accuracy"]
(4, 0.5)
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from meander.bus import TopicPartition
from meander.consumers.learner import detection
from meander.consumers.learner.join import LabelJoin
from meander.models.evaluation import Prequential
from meander.models.inference import Scored, diverged, predict_one
from meander.models.race import RecentRace

__all__ = ["LearnerState", "Outcome"]

_DIVERGED = object()  # a model's own answer that is no number: it has diverged
WATCHED = "watched"  # the role of the replaced champion's answers during a watch


class Outcome(NamedTuple):
    """What one label did to the champion's error stream (a tuple: one is made per label)."""

    drift: bool
    warning: bool
    error: float
    diverged: bool = False  # the champion answered this event with no number (NaN, infinity)


@dataclass
class LearnerState:
    """Everything a learner must restore to resume exactly where it stopped."""

    task: str
    champion: int
    models: dict[int, Any]
    metrics: dict[int, Prequential]  # of what each version served, by version
    served: dict[str, Prequential]  # of what was served as the champion, whatever the version
    races: dict[tuple[int, int], RecentRace]
    detector: Any
    warning: Any | None
    join: LabelJoin
    recent: deque[tuple[int, int, int, int]]
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    watch: tuple[int, int] | None = None
    labels: int = 0
    retrain_requested_at: int | None = None
    warned_at: int | None = None
    last_event: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    race_window: int = 500
    drift_at: int | None = None  # labels seen at the last drift, until a promotion
    follow_ups: int = 0
    follow_up_at: int | None = None
    error_before: float | None = None  # the champion's error level before the last drift
    promoted_at: int | None = None
    rollback_window: int = 1_000
    rollback_tolerance: float = 0.02
    # Labels seen when a whole watch would end: a follow-up retrain waits for it even when the
    # watch was kept early (challengers warm-started on fewer labels since the drift lose).
    watch_until: int | None = None
    diverged: int | None = None  # the champion found answering no number (announced once)

    @classmethod
    def start(
        cls,
        task: str,
        *,
        champion: int,
        model: Any,
        detector: Any,
        ttl_seconds: float,
        max_pending: int,
        kept: int = 2_000,
        race_window: int = 500,
        rollback_window: int = 1_000,
        rollback_tolerance: float = 0.02,
    ) -> LearnerState:
        return cls(
            task=task,
            champion=champion,
            models={champion: model},
            metrics={champion: Prequential(task)},  # type: ignore[arg-type]
            served={},
            races={},
            detector=detector,
            warning=detection.warning_twin(detector),
            join=LabelJoin(ttl_seconds=ttl_seconds, max_pending=max_pending),
            recent=deque(maxlen=kept),
            race_window=race_window,
            rollback_window=rollback_window,
            rollback_tolerance=rollback_tolerance,
        )

    # -- learning ---------------------------------------------------------------------------

    def learn(self, x: dict[str, Any], y: Any) -> None:
        """Train every live model on one labelled event."""
        for model in self.models.values():
            model.learn_one(x, y)
        self.labels += 1

    def evaluate(self, x: dict[str, Any], y: Any, served: dict[tuple[int, str], Scored]) -> Outcome:
        """Score what the predictors served for the event against its label: per-version
        metrics, the races, and the champion's error stream for the drift detector.

        Call it before :meth:`learn`. A version that was not served (the champion a promotion
        just replaced, kept for the rollback watch) answers here, from its current state. A
        served answer of None (a model that had learned nothing yet) is no answer: it is
        counted as ``unanswered``, never as a wrong prediction, and a race asks the version
        itself instead. :meth:`score_many` and :meth:`judge` are its two halves."""
        (error,), (answers,) = self.score_many([y], [served], answers=True)
        return self.judge(x, y, answers or {}, error)

    def score_many(
        self, ys: list[Any], served: list[dict[tuple[int, str], Scored]], *, answers: bool = False
    ) -> tuple[list[float | None], list[dict[int, Any] | None]]:
        """The first half of :meth:`evaluate` for a batch of labels: what each version served
        goes into its metrics; back come the champion's error on each label (None where it
        served no answer) and each label's answers by version, for :meth:`judge`: None where
        judge needs none (no race, and the champion answered), unless ``answers``.

        What was served is the predictors' and no model's, so a whole step's labels can be
        scored before any of them is learned, each metric's updates in one call (in the same
        order as one label at a time, so to the same bits). Labels and answers are checked
        before they get here (``label_problem``, ``prediction_problem``): no update can fail.
        It keeps columns, not an object per label: objects that outlive a label make the
        garbage collector walk the heap."""
        task, metrics = self.task, self.metrics
        errors: list[float | None] = []
        kept: list[dict[int, Any] | None] = []
        keep = answers or bool(self.races)
        columns: dict[Any, tuple[list[Any], list[Any], list[Any]]] = {}  # label, answer, proba
        champion = columns["champion"] = ([], [], [])
        for y, answered in zip(ys, served, strict=True):
            said: dict[int, Any] = {}
            error: float | None = None
            watched: tuple[int, Any] | None = None
            for (version, role), (prediction, proba) in answered.items():
                if role == WATCHED:  # the learner's own answer, for the watch race
                    watched = version, prediction
                    continue
                if version in said:
                    continue  # a redelivered prediction
                if prediction is None:
                    self.counts["unanswered"] += 1
                    continue
                said[version] = prediction
                into = columns.get(version)
                if into is None:
                    if version not in metrics:  # made now, as one label at a time would
                        metrics[version] = Prequential(task)  # type: ignore[arg-type]
                    into = columns[version] = ([], [], [])
                into[0].append(y)
                into[1].append(prediction)
                into[2].append(proba)
                if role == "champion":
                    champion[0].append(y)
                    champion[1].append(prediction)
                    champion[2].append(proba)
                    error = _error(y, prediction, task)
            if watched is not None:
                said.setdefault(*watched)
            errors.append(error)
            # judge() reads the answers for the races, and for the champion's own when it
            # served none; else they die here, with the label.
            kept.append(said if keep or error is None else None)
        for key, (labels, predictions, probas) in columns.items():
            if labels:
                table = self.served if key == "champion" else metrics
                self._metric(table, key).update_many(labels, predictions, probas)
        return errors, kept

    def judge(
        self, x: dict[str, Any], y: Any, answers: dict[int, Any], error: float | None
    ) -> Outcome:
        """The second half of :meth:`evaluate`, for one label, before any model learns it: the
        races (a version that served no answer answers now, as it stands) and the champion's
        ``error`` for the drift detector."""
        for (challenger, baseline), race in self.races.items():
            for version in (challenger, baseline):
                if version not in answers and version in self.models:
                    answers[version] = self._answer(version, x)
            pair = answers.get(challenger), answers.get(baseline)
            if None not in pair:
                # A model that diverged answers no number: its answer counts as none, wrong
                # (or 0.0 for regression), and it loses the event to one that answered.
                race.update(y, *(None if answer is _DIVERGED else answer for answer in pair))
        if error is None:
            # Nothing served: a champion whose answers are no numbers has its events
            # dead-lettered by the predictors; this is where the loop learns of it.
            own = answers.get(self.champion)
            if own is None and self.champion in self.models:
                own = self._answer(self.champion, x)
            return Outcome(False, False, float("nan"), diverged=own is _DIVERGED)
        level, width = detection.window(self.detector)
        drift = detection.worse(self.detector, error, level, width)
        if not drift and self.task == "regression" and self.detector.drift_detected:
            # River's ADWIN empties its window on the update after a detection: a fall in
            # the error would leave it blind to a rise that follows, for want of a level to
            # rise from. It keeps the part it kept at the cut instead.
            self.detector._drift_detected = False
        if drift and self.error_before is None:
            self.error_before = level
        warned = self.warning is not None and detection.worse(self.warning, error)
        warned = warned or bool(getattr(self.detector, "warning_detected", False))
        return Outcome(drift, warned, error)

    def _answer(self, version: int, x: dict[str, Any]) -> Any:
        """``version``'s own prediction for ``x``; ``_DIVERGED`` when it is no number."""
        scored = predict_one(self.models[version], x, self.task)
        return _DIVERGED if diverged(scored) is not None else scored[0]

    def answer_watched(self, event_id: str, x: dict[str, Any]) -> None:
        """During a watch, the replaced champion's answer to an event as it comes, as the new
        champion's was served: answered when its label comes, it would have learned the labels
        in between, which the new one's served answer had not, and on a drifting stream win
        the watch for that alone."""
        if self.watch is None:
            return
        old = self.watch[1]
        model = self.models.get(old)
        if model is not None:
            scored = predict_one(model, x, self.task)
            if diverged(scored) is None:  # else judge asks it again, as it stands then
                self.join.add_prediction(event_id, version=old, role=WATCHED, prediction=scored)

    def late(self, y: Any, version: int, role: str, scored: Scored) -> None:
        """A prediction that arrived after its label: it still counts in the metrics (an
        answer of None does not, as in :meth:`evaluate`)."""
        if scored[0] is None:
            self.counts["unanswered"] += 1
            return
        self._metric(self.metrics, version).update(y, scored[0], scored[1])
        if role == "champion":
            self._metric(self.served, "champion").update(y, scored[0], scored[1])

    def _metric(self, table: dict[Any, Prequential], key: Any) -> Prequential:
        metric = table.get(key)
        if metric is None:
            metric = table[key] = Prequential(self.task)  # type: ignore[arg-type]
        return metric

    # -- lifecycle --------------------------------------------------------------------------

    def add_challenger(self, version: int, model: Any) -> None:
        self.models[version] = model
        self.metrics.setdefault(version, Prequential(self.task))  # type: ignore[arg-type]
        self.races[(version, self.champion)] = self._race(version, self.champion)
        self.retrain_requested_at = None

    def drop(self, version: int) -> None:
        if version == self.champion:
            return
        self.models.pop(version, None)
        self.races = {k: r for k, r in self.races.items() if version not in k}
        if self.watch is not None and version in self.watch:
            self.watch = None

    def promote(self, version: int, model: Any | None) -> None:
        """``version`` becomes the champion; the one it replaces is watched for a rollback."""
        if model is not None:
            self.models[version] = model
            self.metrics.setdefault(version, Prequential(self.task))  # type: ignore[arg-type]
        previous, self.champion = self.champion, version
        # The drift episode stays open until the champion errs about as little as before it.
        self.follow_up_at, self.promoted_at = None, self.labels
        self.races = {
            (c, version): self._race(c, version)
            for (c, _) in self.races
            if c not in (version, previous)
        }
        if previous in self.models and previous != version:
            self.races[(version, previous)] = self._watch_race(version, previous)
            self.watch = (version, previous)
            self.watch_until = self.labels + self.rollback_window
        self._fresh_detectors()

    def roll_back(self, restored: int, demoted: int, model: Any | None) -> None:
        if model is not None:
            self.models[restored] = model
            self.metrics.setdefault(restored, Prequential(self.task))  # type: ignore[arg-type]
        self.champion = restored
        self.watch = self.watch_until = None
        # A challenger trained during the watch races the restored champion from now on.
        self.races = {
            (c, restored): self._race(c, restored)
            for (c, _) in self.races
            if c not in (restored, demoted)
        }
        self.drop(demoted)
        self._fresh_detectors()

    def end_watch(self) -> None:
        if self.watch is not None:
            _, previous = self.watch
            self.watch = None
            self.drop(previous)

    def _race(self, challenger: int, baseline: int, window: int | None = None) -> RecentRace:
        task: Any = self.task
        return RecentRace(task, challenger, baseline, window=window or self.race_window)

    def settled(self) -> bool:
        """No race runs, nor would a whole watch."""
        return not self.races and (self.watch_until is None or self.labels > self.watch_until)

    def _watch_race(self, new: int, old: int) -> RecentRace:
        """The race of a new champion against the one it replaced. It also bets that the new
        one is at most ``rollback_tolerance`` worse, so that the watch (the old champion's
        predict and learn on every event) may end as soon as that is clear."""
        task: Any = self.task
        window, tolerance = self.rollback_window, self.rollback_tolerance
        return RecentRace(task, new, old, window=window, tolerance=tolerance)

    def _fresh_detectors(self) -> None:
        self.detector = self.detector.clone()
        self.warning = detection.warning_twin(self.detector)
        self.retrain_requested_at = None


def _error(y: Any, prediction: Any, task: str) -> float:
    if task == "regression":
        return abs(float(y) - float(prediction))
    return 0.0 if prediction == y else 1.0


def lagging(state: LearnerState, settle: int, task: str) -> bool:
    """True when, ``settle`` labels after the last drift or promotion, the champion still errs
    clearly more than before the drift; closes the drift episode once it errs about as little.
    A challenger that won its race may still be a poor model: promoted while the concept was
    changing, it can be better than the old champion and bad all the same."""
    before = state.error_before
    if before is None or state.drift_at is None or not state.settled():
        return False
    now = detection.level(state.detector)
    if now is None:
        return False
    if task == "regression":
        back, clearly = before * 1.1, before * 1.5
    else:
        back, clearly = before + 0.05, before + 0.1
    if now <= back:
        state.error_before = state.drift_at = None
        return False
    since = state.labels - max(state.drift_at, state.promoted_at or 0)
    return since >= settle and now > clearly
