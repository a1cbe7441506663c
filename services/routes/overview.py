"""One stream at a glance: the snapshot the dashboard polls.

Everything is read fresh from where the loop already keeps it: topic end offsets (how many
events and labels were published), the learner's metrics JSON, the registry, and the two
capped Redis logs the notifier writes (``meander:alerts:log``, ``meander:models:log``).
The page turns successive snapshots into rates and series; markers carry their own event time,
in milliseconds, the same axis as the snapshot's ``at_ms``.

>>> import fakeredis
>>> from meander.bus import MemoryBroker, MemoryBus
>>> from meander.config import Settings
>>> from meander.store import memory_store
>>> from meander.producers.synthetic import synthetic
>>> stream = synthetic("sea").stream_config("sea")
>>> runtime = Runtime(Settings(streams=[stream]), MemoryBus(MemoryBroker()),
...                   memory_store(fakeredis.FakeServer()))
>>> runtime.bus.create_topics(topics.layout([stream]))
>>> view = overview(runtime, stream, now_ms=1_000)
>>> view.at_ms, view.metric, view.throughput.events, view.versions, view.lineage
(1000, 'accuracy', 0, [], [])
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import orjson
import redis
from pydantic import BaseModel, Field, ValidationError

from meander import keys, topics
from meander.bus import TopicPartition
from meander.config import StreamConfig
from meander.events import Alert, ModelEvent
from meander.models.registry import Registry
from meander.models.signing import Signer
from meander.models.versions import ModelVersion, Status
from meander.runtime import Runtime
from meander.vocabulary import Severity

__all__ = ["AlertItem", "Marker", "Overview", "Throughput", "VersionItem", "VersionMetric"]

RECENT_ALERTS = 20
LINEAGE_LENGTH = 30
SCANNED = 1_000  # newest log entries read per poll; the logs hold every stream's events


class Throughput(BaseModel):
    """Counters since the topics were created; the page divides their change by the time."""

    events: int = Field(description="feature events published on S.events", examples=[120_000])
    labels: int = Field(description="labels published on S.feedback")
    learned: int = Field(description="labels the learner has learned from (its last metrics)")


class VersionMetric(BaseModel):
    """The learner's prequential metric of one live version (what it served, then learned)."""

    version: int = Field(examples=[3])
    status: Status | None = Field(description="the version's status in the registry")
    rolling: float | None = Field(description="the metric over the recent window")
    overall: float | None = Field(description="the metric since the version went live")
    labels: int = Field(description="labelled predictions the metric covers")


class Marker(BaseModel):
    """A moment to mark on the metric chart: a drift found, or a champion changed."""

    at_ms: int = Field(description="when it happened, Unix milliseconds", examples=[1718000000000])
    kind: Literal["concept_drift", "concept_drift_warning", "promoted", "rolled_back"]
    version: int | None = Field(description="the version it concerns, when one")
    text: str = Field(description="one line for a tooltip", examples=["v4 promoted"])


class AlertItem(BaseModel):
    """One alert about the stream, newest first in the snapshot."""

    id: str
    at_ms: int
    kind: str = Field(examples=["concept_drift"])
    severity: Severity
    subject: str = Field(description="the feature or model version it is about", examples=["v3"])
    message: str


class VersionItem(BaseModel):
    """One model version in the lineage: where it came from and where it stands."""

    version: int
    parent: int | None
    status: Status
    spec: str = Field(examples=["tree.HoeffdingTreeClassifier"])
    cause: str = Field(description="why it was trained", examples=["concept drift at event e-9"])
    reason: str = Field(description="why its status last changed")
    created_ms: int
    promoted_ms: int | None


class Overview(BaseModel):
    """Everything the dashboard shows about one stream, as of ``at_ms``."""

    stream: str = Field(examples=["fraud"])
    task: str = Field(examples=["binary"])
    metric: Literal["accuracy", "mae"] = Field(description="what `rolling` and `overall` hold")
    at_ms: int = Field(description="when this snapshot was taken, Unix milliseconds")
    champion: int | None
    throughput: Throughput
    served: VersionMetric | None = Field(
        description="what was served as the champion, whichever version it was; `version` is "
        "the champion now"
    )
    versions: list[VersionMetric] = Field(description="live versions, champion first")
    markers: list[Marker] = Field(description="drifts and champion changes, oldest first")
    alerts: list[AlertItem] = Field(description=f"the last {RECENT_ALERTS}, newest first")
    lineage: list[VersionItem] = Field(description=f"the last {LINEAGE_LENGTH}, newest first")


def overview(runtime: Runtime, stream: StreamConfig, *, now_ms: int) -> Overview:
    """The snapshot of ``stream`` as of ``now_ms`` (a blocking read: call it from a thread)."""
    metric: Literal["accuracy", "mae"] = "mae" if stream.task == "regression" else "accuracy"
    # Only metadata is read, never a model blob: a throwaway key keeps a missing signing key
    # from locking people out of the dashboard, and would refuse any blob if one were read.
    registry = Registry(runtime.store, stream.name, Signer(secrets.token_bytes(32)))
    versions = registry.versions()
    statuses = {entry.version: entry.status for entry in versions}
    learner = _learner_metrics(runtime.store, stream.name)
    reports = learner.get("versions", {})
    live = [
        _version_metric(int(v), statuses.get(int(v)), report, metric)
        for v, report in reports.items()
    ]
    live.sort(key=lambda item: (item.status != "champion", item.version))
    served = learner.get("served", {}).get("champion")
    champion = registry.champion()
    alerts, markers = _alerts(runtime.store, stream.name)
    markers += _decisions(runtime.store, stream.name)
    return Overview(
        stream=stream.name,
        task=stream.task,
        metric=metric,
        at_ms=now_ms,
        champion=champion,
        throughput=_throughput(runtime, stream.name, int(learner.get("labels", 0))),
        served=None if served is None else _version_metric(champion or 0, None, served, metric),
        versions=live,
        markers=sorted(markers, key=lambda marker: marker.at_ms),
        alerts=alerts[:RECENT_ALERTS],
        lineage=[_lineage_item(entry) for entry in reversed(versions[-LINEAGE_LENGTH:])],
    )


def _throughput(runtime: Runtime, stream: str, learned: int) -> Throughput:
    bus = runtime.bus
    names = (topics.events(stream), topics.feedback(stream))
    partitions = [TopicPartition(t, p) for t in names for p in range(bus.partitions(t))]
    reader = bus.assign(partitions)
    try:
        ends = reader.end_offsets(partitions)
    finally:
        reader.close()
    events, labels = (sum(o for p, o in ends.items() if p.topic == name) for name in names)
    return Throughput(events=events, labels=labels, learned=learned)


def _learner_metrics(store: redis.Redis[bytes], stream: str) -> dict[str, Any]:
    raw = store.get(keys.metrics(stream))
    metrics = orjson.loads(raw) if raw else {}
    return metrics if isinstance(metrics, dict) else {}


def _version_metric(
    version: int, status: Status | None, report: dict[str, float], metric: str
) -> VersionMetric:
    labels = int(report.get("n", 0))
    return VersionMetric(  # a version without labels has no metric yet, not a metric of 0
        version=version,
        status=status,
        rolling=report.get(f"{metric}_rolling") if labels else None,
        overall=report.get(metric) if labels else None,
        labels=labels,
    )


def _alerts(store: redis.Redis[bytes], stream: str) -> tuple[list[AlertItem], list[Marker]]:
    alerts: list[AlertItem] = []
    markers: list[Marker] = []
    for entry_id, at_ms, data in _log(store, keys.log("alerts"), stream):
        try:
            alert = Alert.model_validate(data)
        except ValidationError:
            continue  # not ours to judge here; the notifier logged what it was given
        subject = alert.feature or (f"v{alert.version}" if alert.version is not None else "")
        message = alert.message or f"{alert.statistic} = {alert.value:.4g}"
        alerts.append(
            AlertItem(
                id=entry_id,
                at_ms=at_ms,
                kind=alert.kind,
                severity=alert.severity,
                subject=subject,
                message=message,
            )
        )
        if alert.kind == "concept_drift" or alert.kind == "concept_drift_warning":
            text = f"{alert.kind.replace('_', ' ')} {subject}: {message}"
            markers.append(Marker(at_ms=at_ms, kind=alert.kind, version=alert.version, text=text))
    return alerts, markers


def _decisions(store: redis.Redis[bytes], stream: str) -> list[Marker]:
    markers: list[Marker] = []
    for _, at_ms, data in _log(store, keys.log("models"), stream):
        try:
            event = ModelEvent.model_validate(data)
        except ValidationError:
            continue
        if event.action == "promoted" or event.action == "rolled_back":
            text = f"v{event.version} {event.action.replace('_', ' ')}: {event.reason}"
            markers.append(Marker(at_ms=at_ms, kind=event.action, version=event.version, text=text))
    return markers


def _log(store: redis.Redis[bytes], key: str, stream: str) -> Iterator[tuple[str, int, Any]]:
    """``(id, event time in ms, data)`` of the stream's newest entries in a notifier log."""
    for entry_id, fields in store.xrevrange(key, count=SCANNED):
        if fields.get(b"stream") != stream.encode():
            continue
        try:
            event = orjson.loads(fields[b"event"])
            at_ms = _ms(event.get("time")) or int(entry_id.split(b"-")[0])  # else when logged
            found = (fields.get(b"id", entry_id).decode(), at_ms, event["data"])
        except (KeyError, ValueError, AttributeError, orjson.JSONDecodeError):
            continue
        yield found


def _ms(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _lineage_item(entry: ModelVersion) -> VersionItem:
    cause = entry.cause.get("reason") or entry.cause.get("alert") or ""
    promoted = entry.promoted_at
    return VersionItem(
        version=entry.version,
        parent=entry.parent,
        status=entry.status,
        spec=entry.spec,
        cause=str(cause),
        reason=entry.reason,
        created_ms=int(entry.created_at.timestamp() * 1000),
        promoted_ms=None if promoted is None else int(promoted.timestamp() * 1000),
    )
