"""Telling a confluent-kafka group member that stopped rejoining its group from an idle one.

A static member (``group.instance.id``) whose session timed out while the broker restarted can
stop for good: librdkafka logs ``SESSTMOUT ... revoking assignment and rejoining group`` and
never rejoins (librdkafka issue 3437). Its polls go on returning nothing and no error, as an idle
member's do; the group it left is empty. Only the group tells them apart: a member with no
partitions for longer than ``after`` (two session timeouts), whose group is settled and does not
list it, has stopped. A member the group lists (one more member than partitions), a group in the
middle of a rebalance, a broker that does not answer: none of those is a stall.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Membership", "Stall"]


@dataclass(frozen=True)
class Membership:
    """What the broker says of a group: whether it is settled (no rebalance under way) and the
    member ids and instance ids of its members."""

    settled: bool
    members: frozenset[str]


class Stall:
    """Watches one group member's assignment; ``stalled`` says when it must be replaced.

    >>> clock = iter([0.0, 5.0, 21.0]).__next__
    >>> class Idle:
    ...     def assignment(self): return []
    ...     def memberid(self): return ""
    >>> stall = Stall(lambda: Membership(True, frozenset()), None, after=20.0, clock=clock)
    >>> [stall.stalled(Idle()) for _ in range(3)]
    [False, False, True]
    """

    def __init__(
        self,
        describe: Callable[[], Membership | None],
        instance_id: str | None,
        *,
        after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._describe = describe  # None when the broker does not answer
        self._instance_id = instance_id
        self.after = after
        self._clock = clock
        self._since: float | None = None  # when the member was last seen with no partitions
        self._next_ask = 0.0

    def stalled(self, consumer: Any) -> bool:
        """Whether ``consumer`` (librdkafka's) has had no partitions for ``after`` seconds and
        its group, settled, does not list it. The group is asked at most every ``after / 2``."""
        if consumer.assignment():
            self._since = None
            return False
        now = self._clock()
        if self._since is None:
            self._since = now
        if now - self._since < self.after or now < self._next_ask:
            return False
        self._next_ask = now + self.after / 2
        membership = self._describe()
        if membership is None or not membership.settled:
            return False
        return (self._instance_id or consumer.memberid() or "") not in membership.members

    def idle_seconds(self) -> float:
        """How long the member has had no partitions (0 when it has some)."""
        return 0.0 if self._since is None else self._clock() - self._since

    def reset(self) -> None:
        """Forget the watch: a new client took the member's place."""
        self._since = None
        self._next_ask = 0.0
