"""What the registry records about a model version, and what a predictor polls.

>>> entry = ModelVersion.from_dict({"stream": "fraud", "version": 2, "status": "challenger",
...     "spec": "tree.HoeffdingTreeClassifier", "parent": 1,
...     "created_at": "2024-05-01T12:00:00+00:00"})
>>> entry.parent, entry.promoted_at, entry.revision
(1, None, 1)
>>> ModelVersion.from_dict(entry.to_dict()) == entry
True
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import orjson

from meander.config import StreamConfig

__all__ = ["Heads", "ModelVersion", "Status", "config_hash"]

Status = Literal["registered", "challenger", "champion", "retired", "rejected", "rolled_back"]
STATUSES: tuple[str, ...] = get_args(Status)


@dataclass(frozen=True)
class ModelVersion:
    """One registered model of a stream: where it came from, how it was trained, where it stands.

    ``cause`` holds what asked for it (an alert, a retrain request), ``training`` how it was
    trained (replayed offsets, window size), ``metrics`` its metrics when it was promoted, and
    ``reason`` why its status last changed.
    """

    stream: str
    version: int
    spec: str
    status: Status
    parent: int | None = None
    cause: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    river_version: str = ""
    config_hash: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    promoted_at: datetime | None = None
    revision: int = 1
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; datetimes as ISO 8601 text."""
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["promoted_at"] = self.promoted_at.isoformat() if self.promoted_at else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        """The inverse of :meth:`to_dict`; unknown keys are ignored so old readers keep working."""
        if data.get("status") not in STATUSES:
            raise ValueError(f"status {data.get('status')!r} is not one of {', '.join(STATUSES)}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("created_at", "promoted_at"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        values["metrics"] = {k: float(v) for k, v in (values.get("metrics") or {}).items()}
        return cls(**values)

    def replace(self, **changes: Any) -> ModelVersion:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def meta(self) -> bytes:
        """What the registry stores as the version's metadata: JSON, without the revision,
        which lives in a hash of its own so that a snapshot stays one small write."""
        data = self.to_dict()
        del data["revision"]
        return orjson.dumps(data)

    @classmethod
    def from_meta(cls, meta: bytes, revision: bytes | None = None) -> ModelVersion:
        """The inverse of :meth:`meta`, at ``revision`` (the first when None)."""
        entry = cls.from_dict(orjson.loads(meta))
        return entry if revision is None else entry.replace(revision=int(revision))


@dataclass(frozen=True)
class Heads:
    """The serving state of a stream: champion, challengers and each one's model revision.

    A predictor compares this with what it holds and reloads what moved.
    """

    champion: int | None
    challengers: tuple[int, ...] = ()
    revisions: dict[int, int] = field(default_factory=dict)
    published: bool = False
    """Whether any version of the stream, live or not, was ever saved after it learned (a
    revision past its first): from then on a model that answers nothing is not served."""

    @property
    def live(self) -> tuple[int, ...]:
        """The champion (if any) then the challengers: every version predictors should run."""
        return ((self.champion,) if self.champion is not None else ()) + self.challengers


def config_hash(stream: StreamConfig) -> str:
    """A short fingerprint of the stream's configuration, for the lineage of its models."""
    return hashlib.sha256(stream.model_dump_json().encode()).hexdigest()[:16]
