"""The predictor's records are the ones ``encode(Prediction(...))`` writes, byte for byte (the
ones ``encode_json`` writes, for a stream that asks for plain JSON predictions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from meander.bus import Message, Record
from meander.consumers.predictor.predictions import PredictionWriter
from meander.events import FeatureEvent, Prediction, decode, encode, encode_json

EVENTS = [
    FeatureEvent(id="e1", time=datetime(2026, 1, 2, 3, 4, 5, 678901, UTC), features={"x": 1.0}),
    FeatureEvent(id="é-2", features={"x": None}, entity="customer 7"),
]


ANSWERS = [
    (True, {"False": 0.25, "True": 0.75}),
    ("gold", {"gold": 0.5, "silver": 0.3, "bronze": 0.2}),
    (3, {"1": 0.1, "3": 0.9}),
    (12.5, None),  # a regression
    (None, None),  # a model that has learnt nothing yet
    (2**70, {str(2**70): 1.0}),  # beyond orjson: written by encode itself
]


def _prediction(
    event: FeatureEvent, answer: Any, version: int, role: str, latency: float
) -> Prediction:
    return Prediction(
        event_id=event.id,
        model="fraud",
        version=version,
        role=role,  # type: ignore[arg-type]
        prediction=answer[0],
        probabilities=answer[1],
        latency_ms=latency,
        event_time=event.time,
    )


def _encoded(event: FeatureEvent, answer: Any, version: int, role: str, latency: float) -> Record:
    prediction = _prediction(event, answer, version, role, latency)
    return encode("fraud.predictions", prediction, source="/meander/predictor", subject="fraud")


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("role", ["champion", "challenger"])
def test_the_writer_writes_what_encode_writes(answer: Any, role: str) -> None:
    writer = PredictionWriter("fraud.predictions", "fraud", source="/meander/predictor")
    written = writer.records(EVENTS, [answer, answer], 4, role, 0.125)
    for event, record in zip(EVENTS, written, strict=True):
        expected = _encoded(event, answer, 4, role, 0.125)
        assert (record.topic, record.key, record.value) == (
            expected.topic,
            expected.key,
            expected.value,
        )
        names = [name for name, _ in record.headers]
        assert names == [name for name, _ in expected.headers]
        same = {"ce_id", "ce_time"}  # a new id each, and the time of writing
        assert [h for h in record.headers if h[0] not in same] == [
            h for h in expected.headers if h[0] not in same
        ]
        assert abs(record.timestamp_ms - expected.timestamp_ms) < 5_000
        message = Message(record.topic, 0, 0, record.key, record.value, record.headers, 0)
        assert (
            decode(message).payload
            == decode(
                Message(expected.topic, 0, 0, expected.key, expected.value, expected.headers, 0)
            ).payload
        )


def test_events_without_an_answer_get_no_record_and_ids_are_new() -> None:
    writer = PredictionWriter("fraud.predictions", "fraud", source="/meander/predictor")
    written = writer.records(EVENTS, [None, (True, {"True": 1.0})], 1, "champion", 0.0)
    assert [record.key for record in written] == ["é-2".encode()]
    again = writer.records(EVENTS, [None, (True, {"True": 1.0})], 1, "champion", 0.0)
    assert dict(written[0].headers)["ce_id"] != dict(again[0].headers)["ce_id"]


@pytest.mark.parametrize("answer", ANSWERS)
def test_plain_json_predictions_are_what_encode_json_writes(answer: Any) -> None:
    writer = PredictionWriter(
        "fraud.predictions", "fraud", source="/meander/predictor", cloudevents=False
    )
    written = writer.records(EVENTS, [answer, answer], 2, "champion", 0.5)
    for event, record in zip(EVENTS, written, strict=True):
        prediction = _prediction(event, answer, 2, "champion", 0.5)
        expected = encode_json("fraud.predictions", prediction)
        assert (record.key, record.value, record.headers) == (expected.key, expected.value, ())
        envelope = decode(Message(record.topic, 0, 0, record.key, record.value, (), 0))
        assert (envelope.encoding, envelope.payload) == ("json", prediction)
