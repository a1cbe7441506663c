"""Synchronous predictions from the current champion: the REST-serving case.

The event and its prediction are published like any other, so feedback sent later for its id is
joined and learnt from, and the prediction can be fetched by id or seen live. The event carries
the service's mark (:mod:`meander.consumers.predictor.served`), so predictors pass it by
instead of scoring it again; an event the champion cannot score is refused with 422 and the
reason, as predictors dead-letter it.
"""

from __future__ import annotations

import time
from dataclasses import replace

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from meander import topics
from meander.consumers.predictor.served import mark
from meander.events import FeatureEvent, Prediction, encode, encode_json
from meander.events.values import Label
from meander.models.inference import clean, predict_one
from meander.services.auth import require
from meander.services.bodies import invalid, refuse_any
from meander.services.context import ServiceDep, StreamDep, unavailable
from meander.services.problems import JSONRoute, Problems
from meander.telemetry.metrics import PREDICTION_LATENCY, PREDICTIONS
from meander.vocabulary import SERVED_SOURCE

__all__ = ["Answer", "router"]

router = APIRouter(
    tags=["predict"], dependencies=[Depends(require("publish"))], route_class=JSONRoute
)


class Answer(BaseModel):
    """The champion's answer, as published on ``S.predictions``."""

    event_id: str = Field(examples=["tx-1001"])
    model: str = Field(description="the stream the model serves", examples=["fraud"])
    version: int = Field(examples=[3])
    prediction: Label | None = Field(
        description="None while the champion has learnt nothing", examples=[False]
    )
    probabilities: dict[str, float] | None = Field(examples=[{"False": 0.93, "True": 0.07}])
    latency_ms: float = Field(description="time spent in the model", examples=[0.21])


@router.post(
    "/streams/{stream}/predict",
    summary="Predict one event now, with the champion",
    response_model=Answer,
    responses={
        422: {
            "model": Problems,
            "description": "the event does not fit the stream's schema, or the champion",
        },
        503: {"description": "no champion yet, or the broker is down"},
    },
)
def predict(event: FeatureEvent, service: ServiceDep, stream: StreamDep) -> Answer:
    """Score ``event`` with the champion, publish the event and the prediction, answer it."""
    refuse_any(
        [
            (
                (["features"], "schema", service.schema(stream).violation(event.features)),
                (["time"], "time", service.times.time_problem(event.time)),
            )
        ]
    )
    current = service.champions.current(stream.name)
    if current is None:
        raise unavailable(service.settings, f"stream {stream.name!r} has no champion yet")
    version, model = current
    started = time.perf_counter()
    try:
        prediction, probabilities = predict_one(model, clean(event.features), stream.task)
    except Exception as error:  # what the schema allows and the model cannot take
        why = f"champion v{version} cannot score these features: {type(error).__name__}: {error}"
        raise invalid(["features"], why, "model") from None
    latency_ms = (time.perf_counter() - started) * 1000
    answer = Prediction(
        event_id=event.id,
        model=stream.name,
        version=version,
        prediction=prediction,
        probabilities=probabilities,
        latency_ms=latency_ms,
        event_time=event.time,
    )
    scored = encode(
        topics.events(stream.name), event, source=SERVED_SOURCE, event_id=event.id, time=event.time
    )
    marked = mark(service.champions.signer, stream.name, event.id, scored.value)
    service.publish(
        [
            replace(scored, headers=(*scored.headers, marked)),
            encode_json(topics.predictions(stream.name), answer)
            if stream.encoding.predictions == "json"
            else encode(topics.predictions(stream.name), answer, source=SERVED_SOURCE),
        ],
        stream.name,
    )
    PREDICTIONS.labels(stream.name, "champion").inc()
    PREDICTION_LATENCY.labels(stream.name).observe(latency_ms / 1000)
    return Answer.model_validate(answer.model_dump(exclude={"role", "event_time"}))
