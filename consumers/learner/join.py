"""The join of late labels to the events and predictions they belong to, by event id.

Events wait for their label within a bounded window: at most ``max_pending`` of them, none
older than ``ttl_seconds`` in event time (the newest event seen sets the clock, so a replay
expires the same events as the live run did). What expires unlabelled is counted, not kept.
A prediction that arrives after its label still counts towards the served metrics for a while.

A label read before its event (a labeller faster than the events' producer) is held, as the
record it came in, until its event is read: at most ``max_held`` of them, none for longer than
``hold_seconds`` on the same clock (an event published that long after the label was, and still
not its own, means it is not coming). Held labels are part of the join, so a checkpoint keeps
them with the offsets past them, and a learner resumed from it holds them still.

The join is most of a learner's checkpoint when labels lag far behind their events, so it
pickles as columns (ids, one flat list of feature values, the key tuples they share) rather
than as one object per event: a fifth of the time for 200,000 events.

>>> join = LabelJoin(ttl_seconds=60, max_pending=2)
>>> join.add_event("a", {"x": 1}, timestamp_ms=0, partition=0, offset=0)
>>> join.add_prediction("a", version=1, role="champion", prediction=True)
>>> entry = join.take("a")
>>> entry.features, entry.served
({'x': 1}, {(1, 'champion'): True})
>>> join.take("a") is None
True

>>> join = LabelJoin(ttl_seconds=60, max_pending=2, hold_seconds=10, max_held=5)
>>> join.hold("b", "label of b", timestamp_ms=1_000)
[]
>>> join.add_event("b", {"x": 2}, timestamp_ms=2_000, partition=0, offset=1)
>>> join.ready()
(['label of b'], [])
>>> join.hold("c", "label of c", timestamp_ms=3_000)
[]
>>> join.add_event("d", {"x": 3}, timestamp_ms=13_001, partition=0, offset=2)
>>> join.ready()
([], [('c', 'label of c')])
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LabelJoin", "Pending"]


@dataclass(slots=True)
class Pending:
    """An event waiting for its label, with the predictions served for it so far."""

    features: dict[str, Any]
    timestamp_ms: int
    partition: int
    offset: int
    served: dict[tuple[int, str], Any] = field(default_factory=dict)


class LabelJoin:
    """Events by id until their label arrives; labels by id until their late prediction does."""

    def __init__(
        self, *, ttl_seconds: float, max_pending: int, hold_seconds: float = 0.0, max_held: int = 0
    ) -> None:
        self.ttl_ms = int(ttl_seconds * 1000)
        self.max_pending = max_pending
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.labelled: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.newest_ms = 0
        self.expired = 0  # events that never got a label within the window
        self.held: list[tuple[str, Any, int]] = []  # labels before their event, as read
        self.holding(hold_seconds, max_held)

    def holding(self, hold_seconds: float, max_held: int) -> None:
        """Hold labels read before their event for up to ``hold_seconds``, ``max_held`` at
        most (0: none, each is given back at once by :meth:`hold`)."""
        self.hold_ms, self.max_held = int(hold_seconds * 1000), max_held

    def __len__(self) -> int:
        return len(self.pending)

    def add_event(
        self,
        event_id: str,
        features: dict[str, Any],
        *,
        timestamp_ms: int,
        partition: int,
        offset: int,
    ) -> None:
        if event_id in self.pending:
            return  # a redelivered event: the first copy already waits
        self.pending[event_id] = Pending(features, timestamp_ms, partition, offset)
        self.newest_ms = max(self.newest_ms, timestamp_ms)
        self._expire()

    def add_prediction(self, event_id: str, *, version: int, role: str, prediction: Any) -> Any:
        """Attach a served prediction; returns the label when the event was already labelled
        (a late prediction), else None."""
        entry = self.pending.get(event_id)
        if entry is not None:
            entry.served.setdefault((version, role), prediction)
            return None
        late = self.labelled.get(event_id)
        return None if late is None else late[0]

    def take(self, event_id: str, label: Any = None) -> Pending | None:
        """Remove and return the event's entry; None when it is unknown or expired. Remember the
        label for late predictions when nothing was served yet."""
        entry = self.pending.pop(event_id, None)
        if entry is not None and not entry.served and label is not None:
            self.labelled[event_id] = (label, entry.timestamp_ms)
            self._expire_labelled()
        return entry

    def hold(self, event_id: str, label: Any, *, timestamp_ms: int) -> list[tuple[str, Any]]:
        """Hold ``label`` (read at ``timestamp_ms``) until its event is read; returns the held
        labels given up to keep ``max_held``, with their event ids, oldest first (``label``
        itself when nothing may be held, or when its time is up already)."""
        if self.max_held <= 0 or self.hold_ms <= 0 or timestamp_ms < self.newest_ms - self.hold_ms:
            return [(event_id, label)]
        self.held.append((event_id, label, timestamp_ms))
        over = len(self.held) - self.max_held
        if over <= 0:
            return []
        dropped, self.held = self.held[:over], self.held[over:]
        return [(event_id, label) for event_id, label, _ in dropped]

    def ready(self) -> tuple[list[Any], list[tuple[str, Any]]]:
        """The held labels whose event has been read since, and those whose time is up (with
        their event ids), both in the order they were read; the others stay held."""
        horizon, pending = self.newest_ms - self.hold_ms, self.pending
        found: list[Any] = []
        given_up: list[tuple[str, Any]] = []
        kept: list[tuple[str, Any, int]] = []
        for held in self.held:
            event_id, label, stamp = held
            if event_id in pending:
                found.append(label)
            elif stamp < horizon:
                given_up.append((event_id, label))
            else:
                kept.append(held)
        self.held = kept
        return found, given_up

    def _expire(self) -> None:
        horizon = self.newest_ms - self.ttl_ms
        pending = self.pending
        while pending:
            oldest = next(iter(pending.values()))
            if len(pending) <= self.max_pending and oldest.timestamp_ms >= horizon:
                break
            pending.popitem(last=False)
            self.expired += 1

    def _expire_labelled(self) -> None:
        horizon = self.newest_ms - self.ttl_ms
        labelled = self.labelled
        while labelled:
            _, stamp = next(iter(labelled.values()))
            if len(labelled) <= self.max_pending and stamp >= horizon:
                break
            labelled.popitem(last=False)

    def __getstate__(self) -> dict[str, Any]:
        entries = list(self.pending.values())
        return {
            "ttl_ms": self.ttl_ms,
            "max_pending": self.max_pending,
            "newest_ms": self.newest_ms,
            "expired": self.expired,
            "labelled": self.labelled,
            "held": self.held,
            "hold": (self.hold_ms, self.max_held),
            "ids": list(self.pending),
            "features": _columns(entry.features for entry in entries),
            "served": _columns(entry.served for entry in entries),
            "where": array(
                "q", [n for e in entries for n in (e.timestamp_ms, e.partition, e.offset)]
            ),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint written before labels were held holds none; the learner sets the hold.
        self.held, (self.hold_ms, self.max_held) = state.get("held", []), state.get("hold", (0, 0))
        if "pending" in state:  # a checkpoint written before the join pickled as columns
            self.__dict__.update(state)
            return
        self.ttl_ms, self.max_pending = state["ttl_ms"], state["max_pending"]
        self.newest_ms, self.expired = state["newest_ms"], state["expired"]
        self.labelled = state["labelled"]
        where = state["where"]
        self.pending = OrderedDict(
            (event_id, Pending(features, where[3 * i], where[3 * i + 1], where[3 * i + 2], served))
            for i, (event_id, features, served) in enumerate(
                zip(state["ids"], _rows(*state["features"]), _rows(*state["served"]), strict=True)
            )
        )


Columns = tuple[list[tuple[Any, ...]], "array[int]", list[Any]]


def _columns(rows: Iterable[Mapping[Any, Any]]) -> Columns:
    """Dicts as (their distinct key tuples, which one each dict has, all values in a row)."""
    shapes: dict[tuple[Any, ...], int] = {}
    shape_of = array("I")
    values: list[Any] = []
    for row in rows:
        shape_of.append(shapes.setdefault(tuple(row), len(shapes)))
        values.extend(row.values())
    return list(shapes), shape_of, values


def _rows(
    shapes: list[tuple[Any, ...]], shape_of: array[int], values: list[Any]
) -> list[dict[Any, Any]]:
    """The dicts :func:`_columns` took apart.

    >>> _rows(*_columns([{"a": 1, "b": 2}, {}, {"a": 3, "b": 4}]))
    [{'a': 1, 'b': 2}, {}, {'a': 3, 'b': 4}]
    """
    rows: list[dict[Any, Any]] = []
    at = 0
    for shape in shape_of:
        keys = shapes[shape]
        rows.append(dict(zip(keys, values[at : at + len(keys)], strict=True)))
        at += len(keys)
    return rows
