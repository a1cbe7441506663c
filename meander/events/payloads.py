"""The payloads: one typed model per topic, the data of a CloudEvent.

Each payload knows its CloudEvents ``type`` and its Kafka ``key``; :mod:`meander.events.codec`
puts it on the wire.

>>> event = FeatureEvent(id="e1", features={"amount": 12.5, "country": "FR", "card": None})
>>> event.key(), event.type
('e1', 'io.meander.event.v1')
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from meander.bus import Message
from meander.events.values import Features, Label, Moment, new_id
from meander.vocabulary import Action, AlertKind, Severity

__all__ = [
    "PAYLOADS",
    "Alert",
    "DeadLetter",
    "FeatureEvent",
    "Feedback",
    "ModelEvent",
    "Payload",
    "Prediction",
    "decision",
]


# now(), without a Python frame for pydantic to call: every event built takes the time.
_now = partial(datetime.now, UTC)


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
    time: Moment = Field(default_factory=_now)
    features: Features
    entity: str | None = Field(default=None, min_length=1, max_length=200)

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
    event_id: str = Field(min_length=1, max_length=200)
    label: Label
    observed_at: Moment = Field(default_factory=_now)

    def key(self) -> str:
        return self.event_id


class Alert(Payload):
    """A drift or performance finding, on ``meander.alerts``."""

    type: ClassVar[str] = "io.meander.alert.v1"
    kind: AlertKind
    stream: str
    severity: Severity
    statistic: str
    value: float
    threshold: float | None = None
    feature: str | None = None
    model: str | None = None
    version: int | None = None
    window: int | None = Field(default=None, description="events the statistic covers")
    at_event: str | None = Field(default=None, description="id of the event it was found at")
    message: str = ""
    detected_at: datetime = Field(default_factory=_now)

    def key(self) -> str:
        return self.stream


class ModelEvent(Payload):
    """A lifecycle decision, with the evidence behind it, on ``meander.models``."""

    type: ClassVar[str] = "io.meander.model.v1"
    action: Action
    stream: str
    model: str | None = None
    version: int | None = None
    previous_version: int | None = None
    at_event: str | None = Field(default=None, description="id of the last event it saw")
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return self.stream


def decision(
    stream: str,
    action: str,
    version: int,
    previous: int | None,
    reason: str,
    evidence: dict[str, Any],
    at_event: str | None = None,
) -> ModelEvent:
    """A lifecycle decision about ``version`` of the stream's lineage, with its evidence."""
    return ModelEvent(
        action=action,  # type: ignore[arg-type]
        stream=stream,
        model=stream,
        version=version,
        previous_version=previous,
        reason=reason,
        evidence=evidence,
        at_event=at_event,
    )


_REASON_CHARS = 1_000  # a reason may quote what it rejects (a feature's name, a value)
_HEADER_OVERHEAD = 16  # a header's place in the dead letter's JSON beside its name and value


class DeadLetter(Payload):
    """A rejected message, kept whole with the reason, on ``meander.deadletter``."""

    type: ClassVar[str] = "io.meander.deadletter.v1"
    reason: str
    component: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str | None = Field(description="None when the value was null")
    size: int = Field(description="bytes of the original value")
    truncated: bool = Field(
        description="True when the value, the key, a header or the reason holds only its first "
        "bytes, or headers were left out, to keep the dead letter within the topic's limit"
    )
    headers_b64: list[tuple[str, str | None]] = Field(description="None for a null value")
    rejected_at: datetime = Field(default_factory=_now)

    def key(self) -> str:
        return self.topic

    @classmethod
    def of(
        cls, message: Message, reason: str, component: str, keep_bytes: int = 256_000
    ) -> DeadLetter:
        """The record of ``message``. Its key, headers, value and reason together keep at most
        about ``keep_bytes`` of the original: any client can write a record whose key or
        headers alone, base64-encoded, would not fit on the dead-letter topic, and one that
        could not be dead-lettered would stop its reader for good. The key and the headers
        keep up to a quarter of it (they are small in any record a person meant), the value
        the rest, each from its first byte, and the reason its first 1,000 characters;
        ``truncated`` says when anything was cut."""

        def b64(raw: bytes | None) -> str | None:
            return None if raw is None else base64.b64encode(raw).decode("ascii")

        cut = len(reason) > _REASON_CHARS
        reason = reason[:_REASON_CHARS] + "..." if cut else reason
        side = keep_bytes // 4
        key = message.key
        if key is not None and len(key) > side:
            key, cut = key[:side], True
        side -= 0 if key is None else len(key)
        headers: list[tuple[str, str | None]] = []
        for name, raw in message.headers:
            name_bytes = len(name.encode("utf-8", "replace")) + _HEADER_OVERHEAD
            if name_bytes > side:
                cut = True
                break
            side -= name_bytes
            if raw is not None and len(raw) > side:
                raw, cut = raw[:side], True
            side -= 0 if raw is None else len(raw)
            headers.append((name, b64(raw)))
        value = message.value
        room = keep_bytes - (keep_bytes // 4 - side)  # what the key and headers left
        if value is not None and len(value) > room:
            cut = True
        return cls(
            reason=reason,
            component=component,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key_b64=b64(key),
            value_b64=None if value is None else b64(value[:room]),
            size=0 if value is None else len(value),
            truncated=cut,
            headers_b64=headers,
        )

    def original_value(self) -> bytes | None:
        return None if self.value_b64 is None else base64.b64decode(self.value_b64)


PAYLOADS: dict[str, type[Payload]] = {
    cls.type: cls for cls in (FeatureEvent, Prediction, Feedback, Alert, ModelEvent, DeadLetter)
}
