"""The event contracts: a typed payload per topic, carried as CloudEvents 1.0 in Kafka binary mode.

Attributes travel as ``ce_*`` headers (``datacontenttype`` as ``content-type``), the payload as
JSON in the value, and the event id or an entity key as the Kafka key, which CloudEvents readers
see as the ``partitionkey`` extension.

>>> event = FeatureEvent(id="e1", features={"amount": 12.5, "country": "FR"})
>>> record = encode("fraud.events", event, source="/meander/producer", subject="fraud")
>>> record.key
b'e1'
>>> dict(record.headers)["ce_type"]
b'io.meander.event.v1'
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meander.bus import Message, Record
from meander.exceptions import ContractError

__all__ = [
    "Alert",
    "DeadLetter",
    "Envelope",
    "FeatureEvent",
    "Feedback",
    "ModelEvent",
    "Payload",
    "Prediction",
    "decode",
    "decode_batch",
    "encode",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
Value = bool | int | float | str
Label = bool | int | float | str


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


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
    features: dict[str, Value | None]
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


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded event: its CloudEvents attributes, its payload, and where it was read."""

    id: str
    source: str
    type: str
    time: datetime | None
    subject: str | None
    payload: Payload
    message: Message


def encode(
    topic: str,
    payload: Payload,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Record:
    """The Kafka record that carries ``payload`` as a binary-mode CloudEvent."""
    moment = time or now()
    headers = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", (event_id or new_id()).encode()),
        ("ce_source", source.encode()),
        ("ce_type", payload.type.encode()),
        ("ce_time", _rfc3339(moment).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if subject is not None:
        headers.append(("ce_subject", subject.encode()))
    key = payload.key()
    return Record(
        topic=topic,
        value=orjson.dumps(payload.model_dump(mode="json")),
        key=None if key is None else key.encode(),
        headers=tuple(headers),
        timestamp_ms=int(moment.timestamp() * 1000),
    )


def decode(message: Message, *, max_bytes: int | None = None) -> Envelope:
    """The event a message carries; ContractError says precisely why when it carries none."""
    if max_bytes is not None and len(message.value) > max_bytes:
        raise ContractError(f"value of {len(message.value)} bytes exceeds the limit of {max_bytes}")
    attributes = _attributes(message)
    payload_type = PAYLOADS.get(attributes["type"])
    if payload_type is None:
        raise ContractError(f"unknown ce_type {attributes['type']!r}; known: {sorted(PAYLOADS)}")
    try:
        payload = payload_type.model_validate_json(message.value)
    except ValidationError as error:
        raise ContractError(f"invalid {attributes['type']} data: {_first_problem(error)}") from None
    return Envelope(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        time=_parse_time(attributes.get("time")),
        subject=attributes.get("subject"),
        payload=payload,
        message=message,
    )


def decode_batch(
    messages: list[Message], *, max_bytes: int | None = None
) -> tuple[list[Envelope], list[tuple[Message, str]]]:
    """Decode what can be decoded; return the rest with the reason, for the dead-letter topic."""
    decoded: list[Envelope] = []
    rejected: list[tuple[Message, str]] = []
    for message in messages:
        try:
            decoded.append(decode(message, max_bytes=max_bytes))
        except ContractError as error:
            rejected.append((message, str(error)))
    return decoded, rejected


def _attributes(message: Message) -> dict[str, str]:
    attributes: dict[str, str] = {}
    content_type = None
    for name, raw in message.headers:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError(f"header {name!r} is not UTF-8") from None
        lowered = name.lower()
        if lowered.startswith("ce_"):
            attributes[lowered[3:]] = text
        elif lowered == "content-type":
            content_type = text
    if attributes.get("specversion") != SPECVERSION:
        raise ContractError(
            f"not a CloudEvents {SPECVERSION} binary-mode message: ce_specversion is "
            f"{attributes.get('specversion')!r}"
        )
    missing = [a for a in ("id", "source", "type") if not attributes.get(a)]
    if missing:
        raise ContractError(f"missing required CloudEvents header(s): ce_{', ce_'.join(missing)}")
    if content_type is not None and content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise ContractError(f"content-type {content_type!r} is not {CONTENT_TYPE}")
    return attributes


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "(value)"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {problem['msg']}{more}"


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
