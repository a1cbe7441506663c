"""The event contracts: a typed payload per topic, carried as CloudEvents 1.0 in Kafka binary mode.

:mod:`~meander.events.payloads` holds the payloads, made of :mod:`~meander.events.values`;
:mod:`~meander.events.codec` puts them on the wire and reads them back, their CloudEvents
attributes as :mod:`~meander.events.headers`. What people write to a stream's topics may also be
structured-mode CloudEvents (:mod:`~meander.events.structured`) or plain JSON
(:mod:`~meander.events.plain`), told apart per record.

>>> event = FeatureEvent(id="e1", features={"amount": 12.5, "country": "FR"})
>>> record = encode("fraud.events", event, source="/meander/producer", subject="fraud")
>>> record.key
b'e1'
>>> dict(record.headers)["ce_type"]
b'io.meander.event.v1'
"""

from __future__ import annotations

from meander.events.codec import (
    Envelope,
    decode,
    decode_batch,
    encode,
    encode_json,
    keep_decoded,
)
from meander.events.headers import CONTENT_TYPE, SPECVERSION, STRUCTURED_CONTENT_TYPE
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
from meander.events.plain import Encoding, Layout
from meander.events.values import Label, Value, new_id, now

__all__ = [
    "CONTENT_TYPE",
    "PAYLOADS",
    "SPECVERSION",
    "STRUCTURED_CONTENT_TYPE",
    "Alert",
    "DeadLetter",
    "Encoding",
    "Envelope",
    "FeatureEvent",
    "Feedback",
    "Label",
    "Layout",
    "ModelEvent",
    "Payload",
    "Prediction",
    "Value",
    "decision",
    "decode",
    "decode_batch",
    "encode",
    "encode_json",
    "keep_decoded",
    "new_id",
    "now",
]
