"""Topic names: one set per stream, plus the shared topics.

>>> events("fraud"), predictions("fraud"), feedback("fraud")
('fraud.events', 'fraud.predictions', 'fraud.feedback')
>>> sorted(SHARED)
['meander.alerts', 'meander.deadletter', 'meander.models', 'meander.state']
>>> configs(2**26)[STATE]["cleanup.policy"]
'compact'
>>> state_problems(configs(2**26)[STATE], 2**26)
[]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
    "state_problems",
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


def state_problems(found: Mapping[str, str], state_max_bytes: int) -> list[str]:
    """What in ``found``, the settings of an existing ``meander.state``, loses what a store is
    restored from: a policy that deletes records, or a size limit below ``state_max_bytes``.

    A topic made by hand (say, with automatic creation off) has the broker's defaults.

    >>> state_problems({"cleanup.policy": "delete", "max.message.bytes": "1048588"}, 2**26)
    ... # doctest: +NORMALIZE_WHITESPACE
    ['cleanup.policy=delete deletes records a store that lost its data is restored from: set
      cleanup.policy=compact', 'max.message.bytes=1048588 refuses models and checkpoints that
      state_max_bytes (67108864) lets through: set max.message.bytes=67108864, or lower
      state_max_bytes']
    """
    problems = []
    policy = found.get("cleanup.policy", "compact")
    if policy.replace(" ", "") != "compact":
        problems.append(
            f"cleanup.policy={policy} deletes records a store that lost its data is restored "
            "from: set cleanup.policy=compact"
        )
    limit = found.get("max.message.bytes")
    if limit is not None and int(limit) < state_max_bytes:
        problems.append(
            f"max.message.bytes={limit} refuses models and checkpoints that state_max_bytes "
            f"({state_max_bytes}) lets through: set max.message.bytes={state_max_bytes}, or "
            "lower state_max_bytes"
        )
    return problems


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
