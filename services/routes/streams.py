"""A stream's schema and the live profile of its features.

The profile is the one the monitor (:mod:`meander.consumers.monitor.monitor`) writes to
``meander:S:profile`` each time it closes a window of ``drift.data_window`` events: per feature, the
summary since the monitor started (River's ``stats``: count, missing, mean, variance, quantiles, or
the top categories) and the last window's, with its drift test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from meander import keys
from meander.config import StreamConfig
from meander.services.auth import require
from meander.services.context import ServiceDep, StreamDep
from meander.services.problems import JSONRoute, refused
from meander.services.routes.decisions import KEYS

__all__ = ["router"]

router = APIRouter(
    tags=["streams"], dependencies=[Depends(require("read"))], responses=KEYS, route_class=JSONRoute
)


class FeatureSchema(BaseModel):
    type: Literal["numeric", "categorical", "boolean"] = Field(examples=["numeric"])
    required: bool
    minimum: float | None = Field(examples=[0.0])
    maximum: float | None = Field(examples=[None])
    categories: list[str | int] | None = Field(description="allowed values; null allows any")


class StreamSchema(BaseModel):
    stream: str = Field(examples=["fraud"])
    task: Literal["binary", "multiclass", "regression"] = Field(examples=["binary"])
    model: str = Field(
        description="the spec of its first model", examples=["tree.HoeffdingTreeClassifier"]
    )
    features: dict[str, FeatureSchema]


class Quantiles(BaseModel):
    p05: float
    p25: float
    p50: float
    p75: float
    p95: float


class Category(BaseModel):
    value: str = Field(examples=["NL"])
    count: int = Field(examples=[1204])
    share: float = Field(description="of the feature's present values", examples=[0.31])


class Window(BaseModel):
    """The feature in the monitor's last window, and that window's drift test."""

    count: int
    missing_rate: float
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    categories: dict[str, int] | None = None
    drift: dict[str, float | str] | None = Field(
        default=None, description="statistic, value and threshold of the last test"
    )


class FeatureProfile(BaseModel):
    """One feature since the monitor started: numbers or categories, and the last window."""

    type: str = Field(examples=["numeric"])
    count: int = Field(description="values present", examples=[52_000])
    missing: int = Field(examples=[130])
    missing_rate: float = Field(examples=[0.0025])
    mean: float | None = None
    variance: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: Quantiles | None = Field(
        default=None, description="P-square estimates (River's stats.Quantile)"
    )
    top: list[Category] | None = Field(default=None, description="most frequent first")
    window: Window


class StreamProfile(BaseModel):
    stream: str = Field(examples=["fraud"])
    updated_at: datetime
    since: datetime | None = Field(description="when the monitor started profiling")
    events: int = Field(description="valid events profiled so far", examples=[52_000])
    windows: int = Field(examples=[52])
    window_size: int = Field(description="events in the last window", examples=[1_000])
    at_event: str | None = Field(description="the last event of the last window")
    violation_rate: float = Field(description="share of the last window that broke the schema")
    first_violation: str | None
    features: dict[str, FeatureProfile]


@router.get(
    "/streams/{stream}/schema",
    summary="A stream's features and task",
    responses={404: {"description": "no such stream"}},
)
def schema(stream: StreamDep) -> StreamSchema:
    features = {
        name: FeatureSchema.model_validate(feature.model_dump())
        for name, feature in stream.features.items()
    }
    return StreamSchema(stream=stream.name, task=stream.task, model=stream.model, features=features)


@router.get(
    "/streams/{stream}/profile",
    summary="A live profile of each feature",
    responses={404: {"description": "no such stream, or the monitor has not profiled it yet"}},
)
def profile(service: ServiceDep, stream: StreamDep) -> StreamProfile:
    raw = service.runtime.store.get(keys.profile(stream.name))
    if raw is None:
        raise refused(404, ["path", "stream"], _not_yet(stream), "not_found")
    stored = orjson.loads(raw)
    return StreamProfile(
        stream=stream.name,
        updated_at=stored["updated_at"],
        since=stored.get("since"),
        events=stored["count"],
        windows=stored["windows"],
        window_size=stored["window"],
        at_event=stored.get("at_event"),
        violation_rate=stored["violation_rate"],
        first_violation=stored.get("first_violation"),
        features={name: _feature(entry) for name, entry in stored["features"].items()},
    )


def _feature(entry: dict[str, Any]) -> FeatureProfile:
    window = Window.model_validate(entry)
    # A profile from a monitor older than the overall summaries shows its last window only.
    overall = entry.get("overall") or {"count": window.count, "missing": 0, "missing_rate": 0.0}
    top = overall.get("top")
    categories = None
    if top is not None:
        present = max(overall["count"], 1)
        categories = [Category(value=v, count=n, share=n / present) for v, n in top.items()]
    return FeatureProfile.model_validate(
        {k: v for k, v in overall.items() if k != "top"}
        | {"type": entry["type"], "top": categories, "window": window}
    )


def _not_yet(stream: StreamConfig) -> str:
    return (
        f"the monitor has not profiled stream {stream.name!r} yet: it writes a profile each "
        f"time it has seen drift.data_window = {stream.drift.data_window} more events; check "
        f"that a monitor runs (`meander run monitor`) and that events are published"
    )
