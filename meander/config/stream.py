"""A stream's configuration: its name, task, features, and how its models learn, drift, and
are promoted (:class:`StreamConfig`, one per stream in :class:`~meander.config.Settings`).

>>> stream = StreamConfig(name="fraud", task="binary", features={"amount": "numeric"})
>>> stream.features["amount"].type, sorted(stream.label_classes or ())
('numeric', [False, True])
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    field_validator,
    model_validator,
)

from meander.config.encoding import EncodingSettings
from meander.config.limits import HOUR, Count, Delay, Events, Seconds, Timeout, Window, at_most
from meander.config.search_space import default_candidates, default_model

__all__ = [
    "STREAM_NAME",
    "TASKS",
    "DriftSettings",
    "Feature",
    "LabelWindow",
    "LearningSettings",
    "PromotionSettings",
    "StreamConfig",
    "Task",
    "known_task",
]

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = get_args(Task)


def known_task(task: str) -> Task:
    """``task`` itself when it is one of :data:`TASKS`; otherwise a ValueError naming them."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return task


# Stream names become topic names (`S.events`), so they follow Kafka's topic alphabet.
STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

BINARY_CLASSES: frozenset[bool | int | str] = frozenset({False, True})

Partitions = Annotated[
    int, Field(gt=0, le=10_000), at_most(10_000, "each partition costs the broker files and memory")
]


class _Section(BaseModel):
    # A misspelt key is an error, never a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Feature(_Section):
    """One input feature of a stream's schema."""

    type: Literal["numeric", "categorical", "boolean"] = "numeric"
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str | int] | None = Field(
        default=None, description="Allowed values of a categorical feature; None allows any."
    )

    @model_validator(mode="after")
    def _bounds_make_sense(self) -> Feature:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        if self.categories is not None and self.type != "categorical":
            raise ValueError("categories apply to categorical features only")
        if self.type != "numeric" and (self.minimum, self.maximum) != (None, None):
            raise ValueError(f"minimum and maximum apply to numeric features, not {self.type}")
        if self.categories == []:
            raise ValueError(
                "categories is empty, so every value would break the schema: list "
                "the allowed values, or leave it out to allow any"
            )
        return self


class DriftSettings(_Section):
    """How drift is detected: River detector specs for the error stream and for features."""

    concept_detector: str = "drift.ADWIN"
    data_detector: str = Field(
        default="drift.ADWIN", description="fed each numeric feature value; empty disables it"
    )
    data_window: Window = Field(
        default=1_000, description="events per monitor window; the first is the reference"
    )
    ks_significance: float = Field(
        default=1e-4,
        gt=0.0,
        lt=1.0,
        description="p-value below which a numeric feature's window differs from its reference "
        "(two-sample Kolmogorov-Smirnov); small because every feature is tested every window",
    )
    psi_threshold: PositiveFloat = Field(
        default=0.2,
        description="population stability index above which a categorical or boolean "
        "feature's window differs from its reference",
    )
    missing_rate_threshold: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="share of a window's events missing a feature above which it is reported",
    )
    violation_rate_threshold: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="share of a window's events that break the schema above which it is reported",
    )


class PromotionSettings(_Section):
    """The validation gate a challenger passes before it replaces the champion."""

    min_samples: Window = Field(
        default=100,
        description="shared events before a race is judged; a race that has not won after 10 "
        "times as many is rejected",
    )
    patience: Events = Field(
        default=150,
        description="events a challenger races before it may be rejected as worse: a model "
        "that starts after a drift starts behind and learns (300 served the same on 21 of the "
        "22 adaptation benchmark streams, and kept losing challengers racing twice as long)",
    )
    min_gain: float = Field(default=0.0, ge=0.0)
    significance: float = Field(default=0.05, gt=0.0, lt=1.0)
    rollback_window: Window = Field(
        default=1_000,
        description="events after a promotion over which the new champion is watched against "
        "the one it replaced (which predicts and learns meanwhile) and rolled back when worse; a "
        "classifier's watch ends sooner once a bet shows it at most rollback_tolerance less "
        "accurate at the significance level",
    )
    rollback_tolerance: float = Field(default=0.02, ge=0.0)


TUNE_AGAIN_REGRESSION = 4_000  # labels before a regression stream's second tuning


class LearningSettings(_Section):
    """How the learner keeps its state and shares its models, and how the trainer warm-starts."""

    checkpoint_every: Events = Field(
        default=2_000, description="labels learned between two checkpoints"
    )
    checkpoint_seconds: Seconds = Field(
        default=1.0,
        description="longest time between two checkpoints while labels arrive (a checkpoint "
        "also follows any decision; checkpoints are spaced by their own cost, so that they take at "
        "most a tenth of the learner's time after a decision and a fiftieth otherwise)",
    )
    publish_every: Events = Field(
        default=100,
        description="labels learned between two model snapshots for predictors (a stale copy "
        "serves a drifting stream worse: 500 cost 0.012 accuracy on an incremental drift); a "
        "model whose snapshot is big waits for a label per 500 bytes of it",
    )
    replay_window: Window = Field(
        default=1_000,
        description="most recent labelled events a challenger is warm-started on",
    )
    max_challengers: Count = 4
    tune_first: bool = Field(
        default=True,
        description=(
            "race the candidates against the first champion once it has learned tune_after "
            "labels (or replay_window, if fewer), without waiting for a drift"
        ),
    )
    tune_after: Events = Field(
        default=1_000,
        description="labels the first champion learns before the candidates race it (lower it "
        "for short streams: 300 served worse than 1,000 on two of five streams measured)",
    )
    tune_again_after: Delay | None = Field(
        default=None,
        description="labels after which the candidates race the champion once more, warm-started "
        "on that many latest labels, when no drift was found by then (0: never; None: 4,000 for "
        "regression, never for classification): a model that needs more labels than the first "
        "tuning gave it, such as a regression tree against a linear model, gets them",
    )
    lease_seconds: Timeout = Field(
        default=5.0,
        description="how long a learner's claim on a stream outlives its last renewal (a thread "
        "renews it every second): how soon a standby takes over from a dead learner",
    )


class LabelWindow(_Section):
    """How long a prediction waits for its label before it is counted as never labelled, and
    how long a label read before its event waits for it."""

    ttl_seconds: Seconds = 3_600.0
    max_pending: Window = 100_000
    hold_seconds: Annotated[
        float, Field(ge=0, le=HOUR), at_most(HOUR, "labels waiting for their event are held")
    ] = Field(
        default=60.0,
        description="how long a label read before its event (a labeller faster than the events' "
        "producer) waits for it, in record time: once the learner has read an event published "
        "this much later than the label, and not the label's, the label is dead-lettered "
        "(0: at once)",
    )
    max_held: Annotated[
        int, Field(ge=0, le=1_000_000), at_most(1_000_000, "held labels are kept in memory")
    ] = Field(
        default=10_000,
        description="labels waiting for their event at most; beyond it the oldest is "
        "dead-lettered (0: none waits)",
    )


class StreamConfig(_Section):
    """A named data source: one schema, one task, one model lineage."""

    name: str
    task: Task
    features: dict[str, Feature] = Field(min_length=1)
    classes: list[bool | int | str] | None = Field(
        default=None,
        description="the labels a classification stream accepts; None: false and true for "
        "binary, any bool, int or string for multiclass",
    )
    model: str = ""
    candidates: list[str] = Field(default_factory=list)
    drift: DriftSettings = DriftSettings()
    promotion: PromotionSettings = PromotionSettings()
    label_window: LabelWindow = LabelWindow()
    learning: LearningSettings = LearningSettings()
    encoding: EncodingSettings = EncodingSettings()
    partitions: Partitions = 3

    @field_validator("name")
    @classmethod
    def _name_is_a_topic_prefix(cls, name: str) -> str:
        if not STREAM_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a valid stream name: use 1-100 letters, digits, '_' or '-'"
            )
        return name

    @field_validator("features", mode="before")
    @classmethod
    def _expand_shorthand(cls, features: Any) -> Any:
        # `amount = "numeric"` is shorthand for `amount = {type = "numeric"}`.
        if isinstance(features, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in features.items()}
        return features

    @field_validator("features")
    @classmethod
    def _names_are_keys(cls, features: dict[str, Feature]) -> dict[str, Feature]:
        for name in features:
            if not name.strip():
                raise ValueError(
                    f"a feature is named {name!r}: name each feature by its key in the events"
                )
        return features

    @model_validator(mode="after")
    def _encoding_fields_are_not_features(self) -> StreamConfig:
        for setting in ("id_field", "time_field"):
            field = getattr(self.encoding, setting)
            if field in self.features:
                raise ValueError(
                    f"encoding.{setting} {field!r} is also a feature: a flat event's {setting} "
                    "is not one of its features; rename one of them"
                )
        return self

    @model_validator(mode="after")
    def _default_model(self) -> StreamConfig:
        # No model configured: a linear first champion and, unless candidates are given (an
        # empty list is an answer), the default search space to race it (see search_space).
        if not self.model:
            kinds = {name: feature.type for name, feature in self.features.items()}
            optional = [name for name, feature in self.features.items() if not feature.required]
            # A logistic regression learns False and True as numbers: two other classes ("no"
            # and "yes") take the multiclass one, as the trees take any label.
            task = self.task
            if task == "binary" and self.classes and not set(self.classes) <= {False, True}:
                task = "multiclass"
            object.__setattr__(self, "model", default_model(task, kinds, optional))
            if "candidates" not in self.model_fields_set:
                candidates = default_candidates(task, kinds, optional)
                object.__setattr__(self, "candidates", candidates)
        return self

    @model_validator(mode="after")
    def _gains_fit_the_task(self) -> StreamConfig:
        for name in ("min_gain", "rollback_tolerance"):
            value = getattr(self.promotion, name)
            if self.task != "regression" and value >= 1:
                raise ValueError(
                    f"promotion.{name} = {value:g} is a difference of accuracy on a {self.task} "
                    "stream, which stays below 1: at 1 or more it never acts; keep it below 1"
                )
        return self

    @model_validator(mode="after")
    def _classes_fit_the_task(self) -> StreamConfig:
        if self.classes is None:
            return self
        if self.task == "regression":
            raise ValueError("classes apply to binary and multiclass streams only")
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"classes must be at least two distinct labels, got {self.classes}")
        if self.task == "binary" and len(self.classes) != 2:
            raise ValueError(f"a binary stream has two classes, got {len(self.classes)}")
        return self

    @property
    def tune_again_at(self) -> int:
        """The label count of the second tuning (0: none): ``learning.tune_again_after``, or by
        default 4,000 for regression and none for classification. Measured with ``meander
        backtest``: on regression streams of 20,000 events a tree overtook the linear first
        champion after the first race (MAE 2.43 -> 2.19 and 10.7 -> 4.5 on two of four); on
        classification, whose trees win the first race or not at all, it changed no served
        accuracy beyond 0.004 on 25 streams but doubled the CPU of some (Hyperplane, RBF)."""
        again = self.learning.tune_again_after
        if again is None:
            return TUNE_AGAIN_REGRESSION if self.task == "regression" else 0
        return again

    @property
    def kept_labels(self) -> int:
        """Latest labelled events the learner keeps the offsets of: the replay window, or the
        second tuning's window when it is longer."""
        return max(self.learning.replay_window, self.tune_again_at)

    @property
    def label_classes(self) -> frozenset[bool | int | str] | None:
        """The labels the stream accepts; None when any label of the task's type is."""
        if self.classes is not None:
            return frozenset(self.classes)
        return BINARY_CLASSES if self.task == "binary" else None
