"""Lifecycle decisions: the record the notifier keeps, and the ones people make through the API.

The loop announces every decision (retrain requested, challenger trained, validated, rejected,
promoted, rolled back) on ``meander.models``; the notifier appends each to the capped Redis
stream ``meander:models:log``, which :func:`history` reads back, newest first.

A manual promotion or rollback changes the registry and queues its announcement in the same
transaction (:class:`Manual`), then publishes it on ``meander.models`` like the trainer's own
decisions, with evidence that says it was manual and who made it. So the learner follows it (it
swaps its champion on the event, as after the trainer's), the predictors follow the registry's
champion from their next batch, and the notifier records it. When the broker does not take it,
the trainer announces it at its next step after the broker is back.

>>> from meander.store import memory_store
>>> history(memory_store(), "fraud", kinds=(), limit=10)
[]
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import redis
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from meander import keys, telemetry
from meander.config import Settings
from meander.events import ModelEvent, decision
from meander.exceptions import ConfigError, StoreUnavailable
from meander.models.aliases import Also
from meander.models.registry import Registry
from meander.models.signing import Signer, signer_for
from meander.models.unannounced import Announcement
from meander.services.auth import Caller, require
from meander.services.context import Service, ServiceDep, StreamDep
from meander.services.problems import JSONRoute, refused
from meander.vocabulary import Action

__all__ = [
    "KEYS",
    "UNKNOWN",
    "UNPARSED",
    "Action",
    "Decision",
    "Manual",
    "evidence_of",
    "history",
    "learner_figures",
    "registry_of",
    "router",
]

if TYPE_CHECKING:
    from redis.client import Pipeline

log = logging.getLogger(__name__)

SOURCE = "/meander/service"
PAGE = 500  # log entries read per round trip while filtering
LARGEST = 2**64 - 1  # each of a Redis stream id's two numbers is an unsigned 64-bit integer
KEYS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid API key"},
    403: {"description": "the key lacks the scope"},
}
UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "no such stream or version"}}
UNPARSED: dict[int | str, dict[str, Any]] = {400: {"description": "the body cannot be parsed"}}


class Decision(BaseModel):
    """One lifecycle decision about a stream's models, with the evidence behind it."""

    id: str = Field(description="the CloudEvents id of the decision", examples=["9f1c0d2e"])
    kind: Action = Field(examples=["promoted"])
    stream: str = Field(examples=["fraud"])
    version: int | None = Field(description="the version decided about", examples=[3])
    previous_version: int | None = Field(
        description="the champion it replaced (promoted), the one demoted (rolled_back), or "
        "the champion it raced (challenger_trained, rejected)",
        examples=[2],
    )
    reason: str = Field(examples=["challenger v3 beat v2 by 0.031 accuracy over 1500 labels"])
    evidence: dict[str, Any] = Field(examples=[{"manual": True, "by": "ops"}])
    manual: bool = Field(description="made by a person through the API")
    by: str | None = Field(description="the API key's name of a manual decision", examples=["ops"])
    at_event: str | None = Field(description="the last event the loop had seen")
    time: datetime | None = Field(description="when it was decided")
    source: str = Field(examples=["/meander/trainer"])
    position: str | None = Field(
        default=None,
        description="its entry in meander:models:log; pass it as `before` for older ones",
        examples=["1715601234567-0"],
    )

    @classmethod
    def of(
        cls, event: ModelEvent, *, id: str, time: datetime | None, source: str, position: str | None
    ) -> Decision:
        manual = event.evidence.get("manual") is True
        by = event.evidence.get("by") if manual else None
        return cls(
            id=id,
            kind=event.action,
            stream=event.stream,
            version=event.version,
            previous_version=event.previous_version,
            reason=event.reason,
            evidence=event.evidence,
            manual=manual,
            by=by if isinstance(by, str) else None,
            at_event=event.at_event,
            time=time,
            source=source,
            position=position,
        )


class Decisions(BaseModel):
    stream: str = Field(examples=["fraud"])
    decisions: list[Decision] = Field(description="newest first")


router = APIRouter(tags=["models"], responses=KEYS, route_class=JSONRoute)


@router.get(
    "/streams/{stream}/decisions",
    summary="Lifecycle decisions with their evidence, newest first",
    dependencies=[Depends(require("read"))],
    responses=UNKNOWN,
)
def decisions(
    service: ServiceDep,
    stream: StreamDep,
    kind: Annotated[list[Action] | None, Query(description="only these kinds")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    before: Annotated[
        str | None,
        Query(pattern=r"^\d{1,20}-\d{1,20}$", description="a decision's position: older only"),
    ] = None,
) -> Decisions:
    """Read from the notifier's log: a decision is listed once the notifier has announced it."""
    if before is not None and any(int(number) > LARGEST for number in before.split("-")):
        message = f"{before!r} is no position: each of its two numbers is at most {LARGEST}"
        raise refused(422, ["query", "before"], message, "value_error")
    found = history(
        service.runtime.store, stream.name, kinds=tuple(kind or ()), limit=limit, before=before
    )
    return Decisions(stream=stream.name, decisions=found)


def history(
    store: redis.Redis[bytes],
    stream: str,
    *,
    kinds: tuple[str, ...],
    limit: int,
    before: str | None = None,
) -> list[Decision]:
    """The stream's latest ``limit`` decisions of ``kinds`` (all when empty), newest first,
    older than the log entry ``before`` when given."""
    wanted = stream.encode()
    found: list[Decision] = []
    if before is not None and not any(int(number) for number in before.split("-")):
        return found  # nothing is older than 0-0, which Redis refuses as an exclusive bound
    upper = "+" if before is None else f"({before}"
    while len(found) < limit:
        page = store.xrevrange(keys.log("models"), max=upper, min="-", count=PAGE)
        for position, fields in page:
            kind = fields.get(b"kind", b"").decode()
            if fields.get(b"stream") == wanted and (not kinds or kind in kinds):
                parsed = _parsed(position.decode(), fields.get(b"event", b""))
                if parsed is not None:
                    found.append(parsed)
                if len(found) == limit:
                    break
        if len(page) < PAGE:
            break
        upper = f"({page[-1][0].decode()}"
    return found


def _parsed(position: str, body: bytes) -> Decision | None:
    try:
        event = orjson.loads(body)
        payload = ModelEvent.model_validate(event["data"])
        time = datetime.fromisoformat(event["time"]) if event.get("time") else None
        return Decision.of(
            payload, id=str(event["id"]), time=time, source=str(event["source"]), position=position
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        # The notifier wrote it; an entry it could not have written is skipped, not a 500.
        log.warning("meander:models:log entry %s is not a model event: %s", position, error)
        return None


def registry_of(service: Service, stream: str) -> Registry:
    """The stream's registry, for its metadata and aliases (from a worker thread).

    Reading metadata and moving aliases verify no model blob, so on a Redis store without a
    configured signing key the registry still answers those; loading a model would refuse.
    """
    runtime = service.runtime
    signer = _signer(service.settings)
    return Registry(runtime.store, stream, signer, changelog=runtime.changelog, guard=runtime.guard)


def _signer(settings: Settings) -> Signer:
    try:
        return signer_for(settings)
    except ConfigError:
        return Signer(secrets.token_bytes(32))  # verifies nothing a real signer wrote


def evidence_of(
    service: Service, stream: str, caller: Caller, versions: tuple[int | None, ...]
) -> dict[str, Any]:
    """What a manual decision records: that it was manual, who made it, and what the learner
    last reported of the versions involved."""
    evidence: dict[str, Any] = {"manual": True, "by": caller.name}
    reported = learner_figures(service, stream)
    metrics = {str(v): reported[str(v)] for v in versions if v is not None and str(v) in reported}
    if metrics:
        evidence["metrics"] = metrics
    return evidence


def learner_figures(service: Service, stream: str) -> dict[str, dict[str, float | None]]:
    """The learner's latest prequential figures of each live version, by version (as text)."""
    raw = service.runtime.store.get(keys.metrics(stream))
    figures: dict[str, dict[str, float | None]] = (
        orjson.loads(raw).get("versions", {}) if raw else {}
    )
    return figures


class Manual:
    """A manual decision's announcement, queued in the registry change's transaction
    (:mod:`meander.models.unannounced`), then published."""

    def __init__(
        self, service: Service, registry: Registry, action: Action, reason: str, evidence: Any
    ) -> None:
        self.service, self.registry, self.action = service, registry, action
        self.reason, self.evidence = reason, evidence
        last = service.runtime.store.get(keys.last_event(registry.stream))
        self.at = last.decode() if last else None
        self.made: list[Announcement] = []

    def of(self, version: int) -> Also:
        """The writes that queue the decision making ``version`` the champion."""

        def queue(pipe: Pipeline[bytes], previous: int | None) -> None:
            stream, at = self.registry.stream, self.at
            event = decision(stream, self.action, version, previous, self.reason, self.evidence, at)
            self.made = [Announcement.of(event, source=SOURCE)]
            self.registry.unannounced.add(pipe, self.made)

        return queue

    def announce(self, response: Response) -> Decision:
        """Publish the decision the registry holds now on ``meander.models``; when the broker
        never acknowledges it, answer 202: the trainer announces it once the broker is back."""
        [made] = self.made
        try:
            self.service.publish([made.record()], self.registry.stream)
        except HTTPException as failure:
            if failure.status_code != 503:
                raise
            response.status_code = 202
            log.warning("%s: %s not announced yet (%s)", made.event.stream, self.action, failure)
        else:
            telemetry.announce("service", [made.event], log)
            try:
                self.registry.unannounced.done(self.made)
            except (StoreUnavailable, redis.RedisError) as error:  # announced: the trainer drops it
                log.warning("%s: %s announced, not dropped (%s)", made.event.stream, made.id, error)
        return Decision.of(made.event, id=made.id, time=made.time, source=SOURCE, position=None)
