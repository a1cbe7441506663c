"""How a stream's topics are read and written (``[streams.encoding]``).

S.events and S.feedback take what any Kafka client writes, told apart per record: CloudEvents in
binary mode (``ce_*`` headers) or in structured mode (``content-type:
application/cloudevents+json``), or plain JSON with no headers at all, an event as
``{"id", "time", "features": {...}}`` or as a flat object of features. These settings name the
fields of a flat object that are not features, and say how predictions are written.

>>> EncodingSettings(id_field="order_id", time_field="created_at").predictions
'cloudevents'
>>> EncodingSettings(id_field="ts", time_field="ts")
Traceback (most recent call last):
  ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for EncodingSettings
  Value error, id_field and time_field are both 'ts' ...
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EncodingSettings"]


class EncodingSettings(BaseModel):
    """The id and time fields of flat JSON events, and the encoding of predictions."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id_field: str | None = Field(
        default=None,
        min_length=1,
        description="the field of a flat JSON event that holds its id (else the Kafka key, else "
        "one made of topic, partition and offset)",
    )
    time_field: str | None = Field(
        default=None,
        min_length=1,
        description="the field of a flat JSON event that holds its time, as RFC 3339 text or Unix "
        "seconds (else the record's timestamp)",
    )
    predictions: Literal["cloudevents", "json"] = Field(
        default="cloudevents",
        description="cloudevents: binary mode, ce_* headers; json: the prediction alone as the "
        "value, keyed by the event id, for readers that ignore headers",
    )

    @model_validator(mode="after")
    def _distinct_fields(self) -> EncodingSettings:
        if self.id_field is not None and self.id_field == self.time_field:
            raise ValueError(f"id_field and time_field are both {self.id_field!r}")
        return self
