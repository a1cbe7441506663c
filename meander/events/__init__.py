"""The event contracts: a typed payload per topic, carried as CloudEvents 1.0 in Kafka binary mode.

:mod:`~meander.events.payloads` holds the payloads, made of :mod:`~meander.events.values`;
:mod:`~meander.events.codec` puts them on the wire and reads them back, their CloudEvents
attributes as :mod:`~meander.events.headers`.

>>> event = FeatureEvent(id="e1", features={"amount": 12.5, "country": "FR"})
>>> record = encode("fraud.events", event, source="/meander/producer", subject="fraud")
>>> record.key
b'e1'
>>> dict(record.headers)["ce_type"]
b'io.meander.event.v1'
"""

from __future__ import annotations

from meander.events.codec import Envelope, decode, decode_batch, encode
from meander.events.headers import CONTENT_TYPE, SPECVERSION
from meander.events.payloads import (
    PAYLOADS,
    Alert,
    DeadLetter,
    FeatureEvent,
    Feedback,
    ModelEvent,
    Payload,
    Prediction,
    decision,
)
from meander.events.values import Label, Value, new_id, now

__all__ = [
    "CONTENT_TYPE",
    "PAYLOADS",
    "SPECVERSION",
    "Alert",
    "DeadLetter",
    "Envelope",
    "FeatureEvent",
    "Feedback",
    "Label",
    "ModelEvent",
    "Payload",
    "Prediction",
    "Value",
    "decision",
    "decode",
    "decode_batch",
    "encode",
    "new_id",
    "now",
]
