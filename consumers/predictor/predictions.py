"""A predictor's output records, written straight from its answers.

``encode(topic, Prediction(...))`` validates a payload the predictor has just built from values
it knows to be right, then writes it; for every event scored, by every live model. A
:class:`PredictionWriter` writes the same record (the same JSON, the same CloudEvents headers
and key) from the answers directly, sharing what every record of a stream has in common: a
third of the cost. A prediction orjson cannot write (an integer label beyond 64 bits) goes
through ``encode`` as before. A stream that asks for plain JSON predictions gets the same value
and key with no headers, as ``encode_json`` writes them.

>>> from meander.events import FeatureEvent, decode
>>> from meander.bus import Message
>>> writer = PredictionWriter("fraud.predictions", "fraud", source="/meander/predictor")
>>> event = FeatureEvent(id="e1", features={"amount": 12.5})
>>> (record,) = writer.records([event], [(True, {"False": 0.2, "True": 0.8})], 3, "champion", 0.5)
>>> record.key
b'e1'
>>> message = Message(record.topic, 0, 0, record.key, record.value, record.headers, 0)
>>> decode(message).payload.probabilities
{'False': 0.2, 'True': 0.8}
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from meander.bus import Record
from meander.events import FeatureEvent, Prediction, encode, encode_json, new_id
from meander.events.headers import CONTENT_TYPE_HEADER, SPECVERSION_HEADER, time_header
from meander.models.inference import Scored

__all__ = ["PredictionWriter"]


class PredictionWriter:
    """Writes the records of one stream's predictions, as ``encode`` writes a Prediction (as
    ``encode_json`` does when ``cloudevents`` is False)."""

    def __init__(self, topic: str, stream: str, *, source: str, cloudevents: bool = True) -> None:
        self.topic, self.stream, self.source = topic, stream, source
        self.cloudevents = cloudevents
        self._source = ("ce_source", source.encode())
        self._type = ("ce_type", Prediction.type.encode())
        self._subject = ("ce_subject", stream.encode())

    def records(
        self,
        events: Sequence[FeatureEvent],
        answers: Sequence[Scored | None],
        version: int,
        role: str,
        latency_ms: float,
    ) -> list[Record]:
        """The records of ``version``'s answers to ``events`` (None: no answer, no record)."""
        now_ms = time.time_ns() // 1_000_000
        stamp = time_header(now_ms)
        spec, source, kind, content, subject = (
            SPECVERSION_HEADER,
            self._source,
            self._type,
            CONTENT_TYPE_HEADER,
            self._subject,
        )
        dumps, option, model = orjson.dumps, orjson.OPT_UTC_Z, self.stream
        cloudevents, topic = self.cloudevents, self.topic
        records = []
        for event, answer in zip(events, answers, strict=True):
            if answer is None:
                continue
            payload = {
                "event_id": event.id,
                "model": model,
                "version": version,
                "role": role,
                "prediction": answer[0],
                "probabilities": answer[1],
                "latency_ms": latency_ms,
                "event_time": event.time,
            }
            try:
                # An exact copy: orjson's bytes sit in a block sized for its working buffer,
                # and a batch of those held until it is sent grows the heap on every call.
                value = memoryview(dumps(payload, option=option)).tobytes()
            except orjson.JSONEncodeError:
                records.append(self._encoded(event, answer, version, role, latency_ms))
                continue
            headers = (
                (spec, ("ce_id", new_id().encode()), source, kind, stamp, content, subject)
                if cloudevents
                else ()
            )
            records.append(Record(topic, value, event.id.encode(), headers, None, now_ms))
        return records

    def _encoded(
        self, event: FeatureEvent, answer: Scored, version: int, role: str, latency_ms: float
    ) -> Record:
        prediction = Prediction(
            event_id=event.id,
            model=self.stream,
            version=version,
            role=role,  # type: ignore[arg-type]
            prediction=answer[0],
            probabilities=answer[1],
            latency_ms=latency_ms,
            event_time=event.time,
        )
        if not self.cloudevents:
            return encode_json(self.topic, prediction)
        return encode(self.topic, prediction, source=self.source, subject=self.stream)
