"""Building challengers: replay the recent labelled window, warm-start candidates on it.

The retrain request names the offsets of the labelled events the learner saw last. Replaying
exactly those (events and labels, joined by event id, in label order) gives every candidate the
same recent past to learn from: a fresh model of the stream's spec, each configured candidate
(our hyperparameter search), and each retired version of the lineage, which may fit again if
its concept has come back. Each is scored prequentially on the window while it learns, and the
best go on to race the champion on live events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
)

from meander import topics
from meander.bus import Bus, TopicPartition
from meander.bus.ordered import read_to_end
from meander.config import StreamConfig
from meander.events import FeatureEvent, Feedback, ModelEvent, decode_batch
from meander.models.evaluation import Prequential
from meander.models.inference import clean, label_problem, predict_one
from meander.models.registry import Registry
from meander.models.specs import build_model, check_task, spec_text

__all__ = ["Candidate", "candidates", "replay_window", "request_problem", "within_reach"]

Window = list[tuple[dict[str, Any], Any]]
# Candidates are ranked on their latest labels of the window: how each does once it learned
# most of it. Predicting every label cost the trainer a third of the loop's time where kNN
# (930 us a prediction on Agrawal) raced; learning stays whole.
SCORED_LABELS = 300
# A candidate this far behind the best one on those labels is not raced: a race costs its
# predict and learn on every event, and a score there has a standard error of at most 0.029
# (accuracy). 0.1 and 0.05 served the same on the adaptation benchmark and on held-out streams;
# 0.05 raced 146 challengers over the benchmark's 22 streams, 0.1 raced 155, none 172.
BEHIND_ACCURACY = 0.05
BEHIND_MAE = 1.5  # times the best one's
Ranges = dict[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}$")], tuple[int, int]]


class _Evidence(BaseModel):
    """What a retrain request's evidence must hold to be answered (the learner writes more)."""

    replay: dict[Literal["events", "feedback"], Ranges] = Field(default_factory=dict)
    since_change: NonNegativeInt = 0  # when absent, the trainer takes the whole window


def request_problem(bus: Bus, stream: StreamConfig, request: ModelEvent) -> str | None:
    """Why the trainer cannot answer ``request``, or None: its replay ranges must be offsets of
    the stream's topics that exist. Anything may be written to ``meander.models``."""
    try:
        evidence = _Evidence.model_validate(request.evidence)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"])
        return f"retrain request evidence.{where}: {problem['msg']}"
    for kind, ranges in evidence.replay.items():
        topic = topics.events(stream.name) if kind == "events" else topics.feedback(stream.name)
        wanted = {TopicPartition(topic, int(p)): bounds for p, bounds in ranges.items()}
        if not all(0 <= lo <= hi for lo, hi in wanted.values()):
            return f"retrain request evidence.replay.{kind}: a range is not 0 <= start <= end"
        if any(p.partition >= bus.partitions(topic) for p in wanted):
            return f"retrain request evidence.replay.{kind}: {topic} has no such partition"
        with bus.assign(sorted(wanted)) as consumer:
            ends = consumer.end_offsets(sorted(wanted))
        if any(hi > ends[p] for p, (_, hi) in wanted.items()):
            return f"retrain request evidence.replay.{kind}: a range ends past the end of {topic}"
    return None


@dataclass
class Candidate:
    """A warm-started model and how it did on the replayed window."""

    model: Any
    spec: str
    origin: str  # "fresh", "fresh_since_change", "candidate" or "past_version"
    score: float
    source_version: int | None = None
    window: Window | None = None  # when it learned a part of the window only
    copy: bool = False  # the same spec on the same labels as a candidate ranked before it


def replay_window(
    bus: Bus, stream: StreamConfig, replay: Mapping[str, Mapping[str, list[int]]]
) -> Window:
    """The labelled events the request points at, as (features, label) in label order."""
    name, task, classes = stream.name, stream.task, stream.label_classes
    events = read_to_end(bus, _ranges(topics.events(name), replay.get("events", {})))
    labels = read_to_end(bus, _ranges(topics.feedback(name), replay.get("feedback", {})))
    features: dict[str, dict[str, Any]] = {}
    for envelope in decode_batch(events, layout=stream.encoding)[0]:
        if isinstance(envelope.payload, FeatureEvent):
            features[envelope.payload.id] = clean(envelope.payload.features)
    labels.sort(key=lambda m: (m.timestamp_ms, m.partition, m.offset))
    window: Window = []
    for envelope in decode_batch(labels, layout=stream.encoding)[0]:
        feedback = envelope.payload
        if not isinstance(feedback, Feedback) or label_problem(feedback.label, task, classes):
            continue
        x = features.get(feedback.event_id)
        if x is not None:
            window.append((x, feedback.label))
    return window


def candidates(
    stream: StreamConfig,
    registry: Registry,
    window: Window,
    champion: int | None,
    since_change: int,
    *,
    fresh: bool = True,
) -> list[Candidate]:
    """Every candidate, warm-started on the labels that follow the change, best first.

    Labels from before the change teach the concept that left, so each spec (the stream's own,
    then each configured candidate) learns only the latest ``since_change`` labels of the
    window, and starts cold when the change was caught at once. Retired versions, which may
    know a concept that came back, are scored on those labels too. Candidates that saw no
    label keep their configured order: the stream's own spec first, then the retired versions
    as they are (a cold model knows no concept), then the others. Without ``fresh`` (the
    first tuning, where a new model of the stream's spec would only repeat the champion) the
    configured candidates alone are built.

    A spec is built once: two models of one spec that learned the same labels are one model
    (the default search space holds the default champion's spec). A second one is a ``copy``
    of the first, ranked beside it with its score, never warm-started: the trainer races
    neither it nor anything in its place. At the first tuning a candidate of the champion's
    own spec is left out, having learned what the champion learned.

    Where :func:`within_reach` will judge them, a candidate is given up as soon as it cannot
    end within reach of the best one warm-started before it (:class:`_Reach`): it is left out,
    and so are its copies."""
    recent = window[len(window) - since_change :] if since_change > 0 else []
    reach = _Reach(stream.task, min(since_change, len(window), len(recent)))
    built: list[Candidate] = []
    specs = [("fresh", stream.model)] if fresh else []
    left_out = set() if fresh or champion is None else {registry.get(champion).spec}
    twins: dict[str, Candidate | None] = {}  # None: given up, out of reach
    for origin, spec in specs + [("candidate", c) for c in stream.candidates]:
        text = spec_text(spec)
        if text in left_out:
            continue
        if text in twins:
            twin = twins[text]
            if twin is not None:
                built.append(replace(twin, origin=origin, copy=True))
            continue
        model = build_model(spec)
        check_task(model, stream.task)
        score = _warm_start(model, recent, stream.task, reach)
        twins[text] = (
            None if score is None else Candidate(model, text, origin, score, window=recent)
        )
        built.extend(c for c in [twins[text]] if c is not None)
    past = _retired(stream.task, registry, champion, recent, reach)
    if not recent:
        # No label says which concept came: a cold model knows none, a retired version may know
        # the one that came back. Those race as they are, the latest first, after the stream's
        # own spec.
        first = 1 if fresh and built and built[0].origin == "fresh" else 0
        return built[:first] + past[::-1] + built[first:]
    higher_is_better = stream.task != "regression"
    return sorted(built + past, key=lambda c: c.score, reverse=higher_is_better)


def _retired(
    task: str, registry: Registry, champion: int | None, recent: Window, reach: _Reach
) -> list[Candidate]:
    """The two latest retired versions (the concepts most likely to come back, at a bounded
    cost), each scored on the latest labels of ``recent`` when there are any."""
    built: list[Candidate] = []
    retired = [v for v in registry.versions() if v.status in ("retired", "rolled_back")]
    for past in retired[-2:]:
        if past.version == champion:
            continue
        model, _ = registry.load(past.version)
        # A past version is worth racing for what it knows: it is scored on the latest labels
        # as it stands (learning each after predicting it), not after learning the whole
        # window, which cost as much as a fresh model's warm start and made it one.
        latest = recent[-SCORED_LABELS:]
        score = _warm_start(model, latest, task, reach) if latest else 0.0
        if score is not None:
            built.append(Candidate(model, past.spec, "past_version", score, past.version, latest))
    return built


def within_reach(ranked: list[Candidate], task: str, since_change: int) -> list[Candidate]:
    """The candidates of ``ranked`` (best first) whose score on the latest labels is near
    enough the best one's to be worth a race; all of them when fewer than ``SCORED_LABELS``
    labels were scored."""
    if since_change < SCORED_LABELS or not ranked:
        return ranked
    best = ranked[0].score
    if task == "regression":
        return [c for c in ranked if c.score <= best * BEHIND_MAE]
    return [c for c in ranked if c.score >= best - BEHIND_ACCURACY]


class _Reach:
    """How far behind the best candidate warm-started so far another may finish and still be
    raced (:func:`within_reach`), where it applies: from ``SCORED_LABELS`` labels scored on.

    A candidate that cannot finish within reach whatever it answers on the labels it has left
    to score is given up at once: the best one's score can only rise as more finish, so the
    trainer would never have raced it, and it leaves the ranking no other candidate's place
    depends on (everything it would rank above is out of reach too). A k-NN model's warm start
    is mostly its predictions on those labels, a retired version's all of it."""

    # Past these bounds the verdict could differ from within_reach's by rounding.
    _SLACK = 1e-9

    def __init__(self, task: str, labels: int) -> None:
        self.regression, self.applies = task == "regression", labels >= SCORED_LABELS
        self.best: float | None = None

    def finished(self, score: float) -> float:
        if self.applies and math.isfinite(score):
            better = self.best is None or (
                score < self.best if self.regression else score > self.best
            )
            self.best = score if better else self.best
        return score

    def out_of(self, total: float, scored: int) -> bool:
        """Whether a candidate with ``total`` (right answers, or absolute error) over the
        first ``scored`` of the ``SCORED_LABELS`` labels is out of reach however it ends."""
        if self.best is None or not math.isfinite(total):
            return False
        if self.regression:  # its error on the labels left is at least 0
            return total / SCORED_LABELS > self.best * BEHIND_MAE * (1 + self._SLACK)
        at_most = (total + SCORED_LABELS - scored) / SCORED_LABELS
        return at_most < self.best - BEHIND_ACCURACY - self._SLACK


def _warm_start(model: Any, window: Window, task: str, reach: _Reach | None = None) -> float | None:
    """Learn the window; the prequential score (accuracy, or MAE) on its latest
    ``SCORED_LABELS`` labels; None when ``reach`` shows it out of reach on the way."""
    metric = Prequential(task)  # type: ignore[arg-type]
    scored_from = len(window) - SCORED_LABELS
    total, regression = 0.0, task == "regression"
    for i, (x, y) in enumerate(window):
        if i >= scored_from:
            prediction, proba = predict_one(model, x, task)
            metric.update(y, prediction, proba)
            if reach is not None:
                if regression:
                    total += abs(y - (0.0 if prediction is None else prediction))
                else:
                    total += prediction == y
                if reach.out_of(total, i - scored_from + 1):
                    return None
        model.learn_one(x, y)
    report = metric.report()
    score = float(report["mae"] if regression else report["accuracy"]) if window else 0.0
    return score if reach is None else reach.finished(score)


def _ranges(topic: str, ranges: Mapping[str, list[int]]) -> dict[TopicPartition, tuple[int, int]]:
    return {TopicPartition(topic, int(p)): (int(lo), int(hi)) for p, (lo, hi) in ranges.items()}
