"""The times a record may carry: from the Unix epoch to a little ahead of the reader's clock.

Kafka refuses a record whose timestamp is further ahead of the broker's clock than its
``log.message.timestamp.after.max.ms`` (one hour by default since Kafka 4.0), and kafka-python
then leaves the producer that sent it failed for every later record. A far-future time also
moves a learner's label window ahead, expiring the events that wait for their labels. So every
boundary holds times to one window: the bus before it sends, the service before it accepts a
request, the components before they act on a record. Times before 1970 have no Kafka timestamp.

>>> window = TimeWindow(max_ahead_seconds=300)
>>> horizon = window.horizon(now_ms=1_767_323_045_000)  # the clock reads 2026-01-02T03:04:05Z
>>> window.timestamp_problem(1_767_323_045_000 + 299_000, horizon) is None
True
>>> print(window.timestamp_problem(1_767_323_045_000 + 7_200_000, horizon))
timestamp 2026-01-02T05:04:05Z is 2.0 h ahead of the clock; at most 300 s ahead is accepted
>>> print(window.time_problem(datetime(1969, 12, 31, tzinfo=UTC), horizon))
time 1969-12-31T00:00:00Z is before 1970, which Kafka timestamps cannot carry
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import NamedTuple

__all__ = ["DEFAULT_MAX_AHEAD_SECONDS", "EPOCH", "Horizon", "TimeWindow"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_MAX_AHEAD_SECONDS = 300.0


class Horizon(NamedTuple):
    """The latest accepted time as of one reading of the clock, in both forms the checks use."""

    ms: int
    moment: datetime


class TimeWindow:
    """The accepted times: from :data:`EPOCH` to ``max_ahead_seconds`` past now.

    The checks take a :class:`Horizon` from the caller, so a batch reads the clock once; a time
    that fits costs a comparison or two.
    """

    def __init__(self, max_ahead_seconds: float) -> None:
        self.max_ahead_ms = int(max_ahead_seconds * 1000)

    def horizon(self, now_ms: int | None = None) -> Horizon:
        """The latest accepted time, as of ``now_ms`` (the clock, when None)."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        latest = now + self.max_ahead_ms
        return Horizon(latest, datetime.fromtimestamp(latest / 1000, UTC))

    def timestamp_problem(self, timestamp_ms: int, horizon: Horizon | None = None) -> str | None:
        """Why a record timestamp (ms) is refused, or None."""
        latest = (horizon or self.horizon()).ms
        if 0 <= timestamp_ms <= latest:
            return None
        return self._problem("timestamp", timestamp_ms, latest)

    def time_problem(self, moment: datetime, horizon: Horizon | None = None) -> str | None:
        """Why ``moment`` (an event's time; naive is UTC) is refused, or None."""
        horizon = horizon or self.horizon()
        try:
            if EPOCH <= moment <= horizon.moment:
                return None
        except TypeError:  # naive: taken as UTC, as the codec writes it
            moment = moment.replace(tzinfo=UTC)
            if EPOCH <= moment <= horizon.moment:
                return None
        return self._problem("time", _milliseconds(moment), horizon.ms)

    def record_problem(
        self, timestamp_ms: int, moment: datetime | None, horizon: Horizon
    ) -> str | None:
        """Why a consumed record is refused: for its timestamp, or its payload's ``moment``."""
        if not 0 <= timestamp_ms <= horizon.ms:
            return self._problem("timestamp", timestamp_ms, horizon.ms)
        return None if moment is None else self.time_problem(moment, horizon)

    def all_fit(self, timestamps_ms: list[int], moments: list[datetime], horizon: Horizon) -> bool:
        """Whether :meth:`record_problem` finds nothing wrong with any of these records, checked
        as a batch; False means only that some record needs the check of its own.

        Comparing two aware datetimes with different ``tzinfo`` objects asks both for their
        offsets: about a microsecond a record. Datetimes that share one (as those one decoder
        read do) compare among themselves at no such cost, so only the batch's earliest and
        latest moments meet the bounds.

        >>> window = TimeWindow(60.0)
        >>> horizon = window.horizon(now_ms=10_000)
        >>> window.all_fit([1_000, 2_000], [EPOCH, EPOCH], horizon)
        True
        >>> window.all_fit([1_000, 80_000], [EPOCH, EPOCH], horizon)
        False
        """
        if not moments:
            return True
        try:
            times_fit = min(moments) >= EPOCH and max(moments) <= horizon.moment
        except TypeError:  # a naive moment among them: each takes the check of its own
            return False
        return times_fit and min(timestamps_ms) >= 0 and max(timestamps_ms) <= horizon.ms

    def _problem(self, what: str, milliseconds: int, latest_ms: int) -> str:
        shown = _text(milliseconds)
        if milliseconds < 0:
            return f"{what} {shown} is before 1970, which Kafka timestamps cannot carry"
        ahead = _duration(milliseconds - (latest_ms - self.max_ahead_ms))
        return (
            f"{what} {shown} is {ahead} ahead of the clock; at most "
            f"{self.max_ahead_ms / 1000:g} s ahead is accepted"
        )


def _milliseconds(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _text(milliseconds: int) -> str:
    try:
        moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{milliseconds} ms"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(milliseconds: int) -> str:
    seconds = milliseconds / 1000
    for unit, size in (("years", 365.25 * 86_400), ("days", 86_400), ("h", 3_600)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
