"""Topic names: one set per stream, plus the shared topics.

>>> events("fraud"), predictions("fraud"), feedback("fraud")
('fraud.events', 'fraud.predictions', 'fraud.feedback')
>>> sorted(SHARED)
['meander.alerts', 'meander.deadletter', 'meander.models', 'meander.state']
>>> configs(2**26)[STATE]["cleanup.policy"]
'compact'
"""

from __future__ import annotations

from collections.abc import Iterable

from meander.config import StreamConfig

__all__ = [
    "ALERTS",
    "DEADLETTER",
    "MODELS",
    "SHARED",
    "STATE",
    "configs",
    "events",
    "feedback",
    "layout",
    "predictions",
]

ALERTS = "meander.alerts"
MODELS = "meander.models"
DEADLETTER = "meander.deadletter"
STATE = "meander.state"
"""The changelog of what the store holds that matters (registry, checkpoints): compacted, so
it keeps the latest value of each key, from which a store that lost its data is restored."""
SHARED = (ALERTS, MODELS, DEADLETTER, STATE)
SHARED_PARTITIONS = 1  # low volume, and one partition keeps the decisions in order


def events(stream: str) -> str:
    return f"{stream}.events"


def predictions(stream: str) -> str:
    return f"{stream}.predictions"


def feedback(stream: str) -> str:
    return f"{stream}.feedback"


def configs(state_max_bytes: int) -> dict[str, dict[str, str]]:
    """The topics created with settings of their own, and those settings.

    ``meander.state`` is compacted and takes records of up to ``state_max_bytes`` (a model or a
    checkpoint); its segments roll every 10 minutes, so compaction has closed segments to clean.
    """
    return {
        STATE: {
            "cleanup.policy": "compact",
            "max.message.bytes": str(state_max_bytes),
            "segment.bytes": str(max(state_max_bytes, 2**24)),  # a record must fit a segment
            "segment.ms": str(10 * 60 * 1000),
            "min.cleanable.dirty.ratio": "0.2",
        }
    }


def layout(streams: Iterable[StreamConfig]) -> dict[str, int]:
    """Every topic meander needs, with its partition count.

    A stream's three topics share one partition count so that an event, its prediction and its
    feedback, all keyed by the event id, land on the same partition number.
    """
    topics = dict.fromkeys(SHARED, SHARED_PARTITIONS)
    for stream in streams:
        for name in (events(stream.name), predictions(stream.name), feedback(stream.name)):
            topics[name] = stream.partitions
    return topics
