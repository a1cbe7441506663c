"""The producer's section of the settings: what ``meander run producer`` publishes.

>>> ProducerSettings(source="sea", events=1_000, label_delay=100).label_delay
100
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from meander.config.limits import Delay, Events, Window, at_most

__all__ = ["ProducerSettings"]


class ProducerSettings(BaseModel):
    """What ``meander run producer`` publishes: a synthetic drifting stream or a file replay."""

    # A misspelt key is an error; so is a NaN or an infinity.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    stream: str | None = Field(default=None, description="target stream; None is the first one")
    source: str = Field(
        default="agrawal", description="a synthetic generator name, or a .csv/.parquet path"
    )
    target: str | None = Field(default=None, description="label column of a replayed file")
    id_column: str | None = Field(
        default=None, description="event id column of a replayed file; None numbers the rows"
    )
    time_column: str | None = Field(
        default=None, description="event time column of a replayed file (ISO 8601 or Unix s)"
    )
    events: Annotated[
        int, Field(ge=0, le=10**12), at_most(10**12, "a trillion events is a typo")
    ] = Field(default=0, description="how many to publish; 0 never stops")
    rate: (
        Annotated[
            float,
            Field(gt=0, le=10**7),
            at_most(10**7, "no producer publishes ten million a second"),
        ]
        | None
    ) = Field(default=None, description="events per second, or no limit")
    batch: Window = Field(default=500, description="events published per step")
    drift: Literal["abrupt", "gradual", "incremental", "recurring"] = "abrupt"
    drift_every: Events = 10_000
    drift_width: Events = Field(
        default=1_000, description="events a gradual drift lasts; at most drift_every"
    )
    label_delay: Delay = Field(default=0, description="events between event and label")
    label_delay_max: Delay | None = Field(
        default=None, description="when set, each delay is uniform in [label_delay, this]"
    )
    label_loss: float = Field(default=0.0, ge=0.0, lt=1.0, description="share never labelled")
    seed: int = 42
    progress: bool = Field(default=True, description="a progress bar when stderr is a terminal")

    @model_validator(mode="after")
    def _consistent(self) -> ProducerSettings:
        if self.label_delay_max is not None and self.label_delay_max < self.label_delay:
            raise ValueError(
                f"label_delay_max ({self.label_delay_max}) is below label_delay "
                f"({self.label_delay}); raise it or unset it for a fixed delay"
            )
        if self.drift == "gradual" and self.drift_width > self.drift_every:
            raise ValueError(
                f"drift_width ({self.drift_width}) is above drift_every ({self.drift_every}): "
                "a gradual drift must end before the next one starts"
            )
        return self
