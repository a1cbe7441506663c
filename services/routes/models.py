"""Streams, their model versions and lineage, the lifecycle decisions, and manual overrides.

Everything here reads the registry (:mod:`meander.models.registry`) and the notifier's decision log;
promote and roll back (admin) change the registry and announce the change on ``meander.models`` as
the trainer does (:mod:`meander.services.routes.decisions`), so the loop follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from meander.config import StreamConfig
from meander.exceptions import RegistryError
from meander.models.registry import Registry
from meander.models.versions import ModelVersion, Status
from meander.services.auth import Caller, require
from meander.services.context import ServiceDep, StreamDep
from meander.services.problems import JSONRoute, refused
from meander.services.routes import decisions
from meander.services.routes.decisions import (
    KEYS,
    UNKNOWN,
    UNPARSED,
    Decision,
    Manual,
    evidence_of,
    learner_figures,
    registry_of,
)

__all__ = ["router"]

router = APIRouter(tags=["models"], responses=KEYS, route_class=JSONRoute)
router.include_router(decisions.router)

T = TypeVar("T")

Reader = Depends(require("read"))
PENDING: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "made, not announced yet: the broker did not take the announcement, "
        "which the trainer publishes once it is back"
    }
}
VersionPath = Annotated[
    int, Path(ge=1, le=2**53, description="a model version of the stream", examples=[3])
]


class StreamSummary(BaseModel):
    name: str = Field(examples=["fraud"])
    task: str = Field(examples=["binary"])
    features: int = Field(description="how many features its schema has", examples=[12])
    champion: int | None = Field(description="the version predictors serve", examples=[3])
    challengers: list[int] = Field(description="versions racing in shadow", examples=[[4]])


class Streams(BaseModel):
    streams: list[StreamSummary]


class Version(BaseModel):
    """One model version: where it came from, how it was trained, where it stands."""

    stream: str = Field(examples=["fraud"])
    version: int = Field(examples=[3])
    spec: str = Field(examples=["tree.HoeffdingAdaptiveTreeClassifier"])
    status: Status = Field(examples=["champion"])
    parent: int | None = Field(description="the version it was trained from", examples=[2])
    cause: dict[str, Any] = Field(description="what asked for it (alert, retrain request)")
    training: dict[str, Any] = Field(description="how it was trained (replayed offsets, window)")
    metrics: dict[str, float] = Field(description="its race's figures when it was promoted")
    river_version: str = Field(examples=["0.26.1"])
    config_hash: str = Field(description="fingerprint of the stream config it was trained under")
    created_at: datetime
    promoted_at: datetime | None
    revision: int = Field(description="model snapshots saved so far (the learner re-saves it)")
    reason: str = Field(description="why its status last changed")
    live: dict[str, float | None] | None = Field(
        default=None, description="the learner's latest prequential figures, while it is live"
    )


class Versions(BaseModel):
    stream: str
    champion: int | None
    challengers: list[int]
    versions: list[Version] = Field(description="every version, oldest first")


class Lineage(BaseModel):
    stream: str
    version: int
    lineage: list[Version] = Field(description="the version, its parent, ... to the first model")


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2_000, examples=["v4 did better in the A/B"])


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2_000, examples=["v5 misroutes refunds"])
    to_version: int | None = Field(
        default=None, ge=1, le=2**53, description="default: the previous champion", examples=[4]
    )


@router.get(
    "/streams", summary="Configured streams and their serving models", dependencies=[Reader]
)
def streams(service: ServiceDep) -> Streams:
    """Each configured stream with its task, feature count, champion and challengers."""
    summaries = []
    for stream in service.settings.streams:
        heads = registry_of(service, stream.name).heads()
        summaries.append(
            StreamSummary(
                name=stream.name,
                task=stream.task,
                features=len(stream.features),
                champion=heads.champion,
                challengers=list(heads.challengers),
            )
        )
    return Streams(streams=summaries)


@router.get(
    "/streams/{stream}/models",
    summary="Every model version of a stream",
    dependencies=[Reader],
    responses=UNKNOWN,
)
def versions(service: ServiceDep, stream: StreamDep) -> Versions:
    registry = registry_of(service, stream.name)
    heads, live = registry.heads(), learner_figures(service, stream.name)
    return Versions(
        stream=stream.name,
        champion=heads.champion,
        challengers=list(heads.challengers),
        versions=[_version(entry, live) for entry in registry.versions()],
    )


@router.get(
    "/streams/{stream}/models/{version}",
    summary="One model version",
    dependencies=[Reader],
    responses=UNKNOWN,
)
def version(service: ServiceDep, stream: StreamDep, version: VersionPath) -> Version:
    entry = _found(registry_of(service, stream.name), version)
    return _version(entry, learner_figures(service, stream.name))


@router.get(
    "/streams/{stream}/models/{version}/lineage",
    summary="A model version and its ancestors",
    dependencies=[Reader],
    responses=UNKNOWN,
)
def lineage(service: ServiceDep, stream: StreamDep, version: VersionPath) -> Lineage:
    registry = registry_of(service, stream.name)
    _found(registry, version)
    live = learner_figures(service, stream.name)
    chain = [_version(entry, live) for entry in registry.lineage(version)]
    return Lineage(stream=stream.name, version=version, lineage=chain)


@router.post(
    "/streams/{stream}/models/{version}/promote",
    summary="Make a version the champion (admin)",
    responses=UNKNOWN | UNPARSED | {409: {"description": "it is the champion already"}} | PENDING,
)
def promote(
    service: ServiceDep,
    stream: StreamDep,
    version: VersionPath,
    body: Promotion,
    caller: Annotated[Caller, Depends(require("admin"))],
    response: Response,
) -> Decision:
    """Promote ``version`` over the current champion, and announce it as a manual decision."""
    registry = registry_of(service, stream.name)
    _found(registry, version)
    champion = registry.champion()
    if champion == version:
        raise refused(
            409,
            ["path", "version"],
            f"v{version} is already the champion of {stream.name!r}; nothing to promote",
            "conflict",
        )
    evidence = evidence_of(service, stream.name, caller, (version, champion))
    figures = evidence.get("metrics", {}).get(str(version), {})
    metrics = {k: float(v) for k, v in figures.items() if isinstance(v, int | float)}
    why = f"manual promotion by {caller.name!r}: {body.reason}"
    manual = Manual(service, registry, "promoted", body.reason, evidence)
    _changed(
        lambda: registry.promote(version, metrics=metrics, reason=why, also=manual.of(version))
    )
    return manual.announce(response)


@router.post(
    "/streams/{stream}/rollback",
    summary="Hand the champion back to an earlier one (admin)",
    responses=UNKNOWN
    | UNPARSED
    | {409: {"description": "no champion, or no version to go back to"}}
    | PENDING,
)
def roll_back(
    service: ServiceDep,
    stream: StreamDep,
    body: Rollback,
    caller: Annotated[Caller, Depends(require("admin"))],
    response: Response,
) -> Decision:
    """Roll back to ``to_version`` (default: the latest retired champion); the demoted champion
    gets status ``rolled_back``. The target must have been the champion once."""
    registry = registry_of(service, stream.name)
    champion = registry.champion()
    if champion is None:
        raise refused(
            409,
            ["path", "stream"],
            f"stream {stream.name!r} has no champion to roll back; promote a version",
            "conflict",
        )
    target = _rollback_target(registry, stream, champion, body.to_version)
    evidence = evidence_of(service, stream.name, caller, (target, champion))
    why = f"manual rollback by {caller.name!r}: {body.reason}"
    manual = Manual(service, registry, "rolled_back", body.reason, evidence)
    _changed(lambda: registry.roll_back(target, reason=why, also=manual.of(target)))
    return manual.announce(response)


def _rollback_target(
    registry: Registry, stream: StreamConfig, champion: int, wanted: int | None
) -> int:
    if wanted is None:
        retired = [v for v in registry.versions() if v.status == "retired" and v.promoted_at]
        if not retired:
            raise refused(
                409,
                ["body", "to_version"],
                f"stream {stream.name!r} has no previous champion to roll back to (no retired "
                f"version); name one in to_version, or promote a version",
                "conflict",
            )
        return max(retired, key=lambda v: v.promoted_at or v.created_at).version
    entry = _found(registry, wanted, ["body", "to_version"])
    if wanted == champion:
        message = f"v{wanted} is already the champion of {stream.name!r}"
        raise refused(409, ["body", "to_version"], message, "conflict")
    if entry.promoted_at is None:
        raise refused(
            409,
            ["body", "to_version"],
            f"v{wanted} of {stream.name!r} was never the champion, so there is nothing to roll "
            f"back to; promote it instead",
            "conflict",
        )
    return wanted


def _changed(change: Callable[[], T]) -> T:
    try:
        return change()
    except RegistryError as error:  # changed by someone else between our checks and now
        raise refused(409, ["path"], str(error), "conflict") from None


def _found(
    registry: Registry, version: int, loc: Sequence[str] = ("path", "version")
) -> ModelVersion:
    try:
        return registry.get(version)
    except RegistryError as error:
        raise refused(404, loc, str(error), "not_found") from None


def _version(entry: ModelVersion, live: dict[str, dict[str, float | None]]) -> Version:
    return Version.model_validate(entry.to_dict() | {"live": live.get(str(entry.version))})
