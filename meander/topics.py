"""Topic names: one set per stream, plus the three shared topics.

>>> events("fraud"), predictions("fraud"), feedback("fraud")
('fraud.events', 'fraud.predictions', 'fraud.feedback')
>>> sorted(SHARED)
['meander.alerts', 'meander.deadletter', 'meander.models']
"""

from __future__ import annotations

from collections.abc import Iterable

from meander.config import StreamConfig

__all__ = [
    "ALERTS",
    "DEADLETTER",
    "MODELS",
    "SHARED",
    "events",
    "feedback",
    "layout",
    "predictions",
]

ALERTS = "meander.alerts"
MODELS = "meander.models"
DEADLETTER = "meander.deadletter"
SHARED = (ALERTS, MODELS, DEADLETTER)
SHARED_PARTITIONS = 1  # low volume, and one partition keeps the decisions in order


def events(stream: str) -> str:
    return f"{stream}.events"


def predictions(stream: str) -> str:
    return f"{stream}.predictions"


def feedback(stream: str) -> str:
    return f"{stream}.feedback"


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
