"""The sections of a stream's configuration: its features (``[streams.features]``) and how its
models drift (``[streams.drift]``), are promoted (``[streams.promotion]``), learn
(``[streams.learning]``) and wait for labels (``[streams.label_window]``); the stream itself is
:class:`~meander.config.stream.StreamConfig`.

>>> PromotionSettings(min_samples=200).significance
0.05
>>> Feature(type="categorical", minimum=0)
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Feature
  Value error, minimum and maximum apply to numeric features, not categorical ...
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    model_validator,
)

from meander.config.limits import HOUR, Count, Delay, Events, Seconds, Timeout, Window, at_most

__all__ = [
    "TUNE_AGAIN_REGRESSION",
    "DriftSettings",
    "Feature",
    "LabelWindow",
    "LearningSettings",
    "PromotionSettings",
    "Section",
]


class Section(BaseModel):
    """A section of a stream's settings: a misspelt key is an error, never a silently ignored
    setting, and so is a NaN or an infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Feature(Section):
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


class DriftSettings(Section):
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


class PromotionSettings(Section):
    """The validation gate a challenger passes before it replaces the champion."""

    min_samples: Window = Field(
        default=100,
        description="shared events before a race is judged; a race that has not won after 10 "
        "times as many is rejected (20 times for a regression challenger still ahead on the "
        "race's latest events)",
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
        "the one it replaced (which predicts and learns meanwhile) and rolled back when worse; "
        "the watch ends sooner once a bet shows it, at the significance level, worse by more "
        "than rollback_tolerance (rolled back) or by at most that much (kept)",
    )
    rollback_tolerance: float = Field(default=0.02, ge=0.0)


TUNE_AGAIN_REGRESSION = 4_000  # labels before a regression stream's second tuning


class LearningSettings(Section):
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
    publish_seconds: Seconds | None = Field(
        default=2.0,
        description="longest time a learned label waits before the predictors' copy of the "
        "model and the metrics include it, however few labels came (None: by count alone, as in "
        "a backtest, whose time is its records')",
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


class LabelWindow(Section):
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
