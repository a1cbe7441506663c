"""The payloads: one typed model per topic, the data of a CloudEvent.

Each payload knows its CloudEvents ``type`` and its Kafka ``key``; :mod:`meander.events.codec`
puts it on the wire.

>>> event = FeatureEvent(id="e1", features={"amount": 12.5, "country": "FR", "card": None})
>>> event.key(), event.type
('e1', 'io.meander.event.v1')
"""

from __future__ import annotations

import base64
import os
import random
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import core_schema

from meander.bus import Message

__all__ = [
    "PAYLOADS",
    "Alert",
    "DeadLetter",
    "FeatureEvent",
    "Feedback",
    "ModelEvent",
    "Payload",
    "Prediction",
    "new_id",
    "now",
]

Value = bool | int | float | str
Label = bool | int | float | str

# The version and variant bits of a UUID4 (RFC 9562), over 128 random bits.
_UUID4_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
# Ids must be unique, not secret: a generator of our own, seeded from os.urandom, costs a fraction
# of a system call per id. Our own so that seeding the global one (producers do) never repeats ids;
# reseeded in a forked child so that parent and child never draw the same ones.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random id: a UUID4 as 32 hex digits, what ``uuid.uuid4().hex`` gives, at less cost.

    >>> import uuid
    >>> uuid.UUID(new_id()).version
    4
    """
    return f"{_IDS.getrandbits(128) & _UUID4_KEEP | _UUID4_SET:032x}"


_NAMES = frozenset({str})
_PLAIN = frozenset({bool, int, float, str, type(None)})


def _plain_features(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
    # Values of exactly these types come out of pydantic's union unchanged, so checking the types
    # gives its answer at a fraction of its cost; anything else gets the full validation.
    if (
        type(value) is dict
        and _NAMES.issuperset(map(type, value))
        and _PLAIN.issuperset(map(type, value.values()))
    ):
        return dict(value)
    return validate(value)


class _FastFeatures:
    """Features built in Python take the shortcut; JSON is left to pydantic's parser, which is
    faster without a Python function in its way."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=schema,
            python_schema=core_schema.no_info_wrap_validator_function(_plain_features, schema),
        )


Features = Annotated[dict[str, Value | None], _FastFeatures]


class Payload(BaseModel):
    """The data of one event; ``type`` is its CloudEvents type."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]

    def key(self) -> str | None:
        """The Kafka key: what keeps related events on one partition."""
        return None


class FeatureEvent(Payload):
    """An observation to score, on ``S.events``."""

    type: ClassVar[str] = "io.meander.event.v1"
    id: str = Field(default_factory=new_id, min_length=1, max_length=200)
    time: datetime = Field(default_factory=now)
    features: Features
    entity: str | None = None

    def key(self) -> str:
        return self.entity or self.id


class Prediction(Payload):
    """A model's answer for one event, on ``S.predictions``."""

    type: ClassVar[str] = "io.meander.prediction.v1"
    event_id: str
    model: str
    version: int
    role: Literal["champion", "challenger"] = "champion"
    prediction: Label | None
    probabilities: dict[str, float] | None = None
    latency_ms: float = Field(ge=0)
    event_time: datetime | None = None

    def key(self) -> str:
        return self.event_id


class Feedback(Payload):
    """The true label of an event, often late, on ``S.feedback``."""

    type: ClassVar[str] = "io.meander.feedback.v1"
    event_id: str = Field(min_length=1)
    label: Label
    observed_at: datetime = Field(default_factory=now)

    def key(self) -> str:
        return self.event_id


class Alert(Payload):
    """A drift or performance finding, on ``meander.alerts``."""

    type: ClassVar[str] = "io.meander.alert.v1"
    kind: Literal[
        "concept_drift",
        "concept_drift_warning",
        "data_drift",
        "missing_values",
        "schema_violations",
        "performance",
    ]
    stream: str
    severity: Literal["info", "warning", "critical"]
    statistic: str
    value: float
    threshold: float | None = None
    feature: str | None = None
    model: str | None = None
    version: int | None = None
    window: int | None = Field(default=None, description="events the statistic covers")
    at_event: str | None = Field(default=None, description="id of the event it was found at")
    message: str = ""
    detected_at: datetime = Field(default_factory=now)

    def key(self) -> str:
        return self.stream


class ModelEvent(Payload):
    """A lifecycle decision, with the evidence behind it, on ``meander.models``."""

    type: ClassVar[str] = "io.meander.model.v1"
    action: Literal[
        "retrain_requested",
        "challenger_trained",
        "validated",
        "rejected",
        "promoted",
        "rolled_back",
    ]
    stream: str
    model: str | None = None
    version: int | None = None
    previous_version: int | None = None
    at_event: str | None = Field(default=None, description="id of the last event it saw")
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return self.stream


class DeadLetter(Payload):
    """A rejected message, kept whole with the reason, on ``meander.deadletter``."""

    type: ClassVar[str] = "io.meander.deadletter.v1"
    reason: str
    component: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    size: int = Field(description="bytes of the original value")
    truncated: bool = Field(description="True when value_b64 holds only the first bytes")
    headers_b64: list[tuple[str, str]]
    rejected_at: datetime = Field(default_factory=now)

    def key(self) -> str:
        return self.topic

    @classmethod
    def of(
        cls, message: Message, reason: str, component: str, keep_bytes: int = 256_000
    ) -> DeadLetter:
        """The record of ``message``; an oversized value keeps its first ``keep_bytes``."""

        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode("ascii")

        return cls(
            reason=reason,
            component=component,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key_b64=None if message.key is None else b64(message.key),
            value_b64=b64(message.value[:keep_bytes]),
            size=len(message.value),
            truncated=len(message.value) > keep_bytes,
            headers_b64=[(name, b64(value)) for name, value in message.headers],
        )

    def original_value(self) -> bytes:
        return base64.b64decode(self.value_b64)


PAYLOADS: dict[str, type[Payload]] = {
    cls.type: cls for cls in (FeatureEvent, Prediction, Feedback, Alert, ModelEvent, DeadLetter)
}
