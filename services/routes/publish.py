"""Publishing events and feedback over HTTP: one, a JSON array, or NDJSON.

The answer comes after the broker acknowledged every record, with the ids to join feedback to
later. An event outside the stream's schema, or a label of the wrong type for the stream's task,
is refused with 422 naming the item and the field, and nothing of that request is published.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from meander import topics
from meander.config import StreamConfig
from meander.events import FeatureEvent, Feedback, encode
from meander.models.inference import label_problem
from meander.services.auth import require
from meander.services.bodies import items, refuse_any, request_body, validated
from meander.services.context import Service, ServiceDep, StreamDep
from meander.services.problems import JSONRoute, Problems

__all__ = ["Published", "router"]

SOURCE = "/meander/service"

router = APIRouter(
    tags=["publish"], dependencies=[Depends(require("publish"))], route_class=JSONRoute
)

ContentType = Annotated[str, Header(include_in_schema=False)]
ContentEncoding = Annotated[str, Header(include_in_schema=False)]

_REFUSED: dict[int | str, dict[str, Any]] = {
    415: {
        "model": Problems,
        "description": "a Content-Type other than JSON or NDJSON, or a compressed body",
    },
    503: {"description": "the broker did not acknowledge; send again (ids stay the same)"},
}
_EVENT = {"id": "tx-1001", "features": {"amount": 129.5, "country": "NL"}}
_FEEDBACK = {"event_id": "tx-1001", "label": True}


class Published(BaseModel):
    """What the broker acknowledged."""

    stream: str = Field(examples=["fraud"])
    count: int = Field(examples=[1])
    ids: list[str] = Field(description="event ids, in the order sent", examples=[["tx-1001"]])


@router.post(
    "/streams/{stream}/events",
    status_code=202,
    summary="Publish events (one, an array, or NDJSON)",
    response_model=Published,
    openapi_extra=request_body(FeatureEvent.model_json_schema(), _EVENT),
    responses=_REFUSED | {413: {"model": Problems, "description": "too many events"}},
)
async def publish_events(
    request: Request,
    service: ServiceDep,
    stream: StreamDep,
    content_type: ContentType = "application/json",
    content_encoding: ContentEncoding = "identity",
) -> Published:
    """Check each event against the stream's schema, publish them to ``S.events``."""
    body = await request.body()
    # Parsing and checking a batch is CPU work: it runs beside the publish, off the event loop.
    return await run_in_threadpool(
        _publish_events, service, stream, body, (content_type, content_encoding)
    )


@router.post(
    "/streams/{stream}/feedback",
    status_code=202,
    summary="Publish true labels (one, an array, or NDJSON)",
    response_model=Published,
    openapi_extra=request_body(Feedback.model_json_schema(), _FEEDBACK),
    responses=_REFUSED | {413: {"model": Problems, "description": "too many labels"}},
)
async def publish_feedback(
    request: Request,
    service: ServiceDep,
    stream: StreamDep,
    content_type: ContentType = "application/json",
    content_encoding: ContentEncoding = "identity",
) -> Published:
    """Check each label's type against the stream's task, publish them to ``S.feedback``."""
    body = await request.body()
    return await run_in_threadpool(
        _publish_feedback, service, stream, body, (content_type, content_encoding)
    )


def _publish_events(
    service: Service, stream: StreamConfig, body: bytes, kind: tuple[str, str]
) -> Published:
    raw = items(body, *kind, service.settings.service.max_body_bytes)
    events = validated(FeatureEvent, raw, service.settings.service.max_batch_events)
    schema, times = service.schema(stream), service.times
    horizon = times.horizon()
    refuse_any(
        (
            ([index, "features"], "schema", schema.violation(event.features)),
            ([index, "time"], "time", times.time_problem(event.time, horizon)),
        )
        for index, event in enumerate(events)
    )
    topic = topics.events(stream.name)
    service.publish(
        [encode(topic, e, source=SOURCE, event_id=e.id, time=e.time) for e in events],
        stream.name,
    )
    return Published(stream=stream.name, count=len(events), ids=[e.id for e in events])


def _publish_feedback(
    service: Service, stream: StreamConfig, body: bytes, kind: tuple[str, str]
) -> Published:
    raw = items(body, *kind, service.settings.service.max_body_bytes)
    labels = validated(Feedback, raw, service.settings.service.max_batch_events)
    times, classes = service.times, stream.label_classes
    horizon = times.horizon()
    refuse_any(
        (
            ([index, "label"], "label", label_problem(feedback.label, stream.task, classes)),
            ([index, "observed_at"], "time", times.time_problem(feedback.observed_at, horizon)),
        )
        for index, feedback in enumerate(labels)
    )
    topic = topics.feedback(stream.name)
    service.publish(
        [encode(topic, f, source=SOURCE, time=f.observed_at) for f in labels], stream.name
    )
    return Published(stream=stream.name, count=len(labels), ids=[f.event_id for f in labels])
