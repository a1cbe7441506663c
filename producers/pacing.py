"""Pacing and progress for producers: a token bucket for events per second, and a tqdm bar.

>>> clock = FakeClock()
>>> bucket = TokenBucket(rate=100.0, clock=clock.now, sleep=clock.sleep)
>>> bucket.acquire(5, timeout=0.0)  # the bucket starts full: a tenth of a second's events
5
>>> bucket.acquire(20, timeout=1.0), clock.now()  # at most a full bucket, after waiting for it
(10, 0.05)
>>> bucket.acquire(20, timeout=0.0)  # nothing has flowed in since
0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

__all__ = ["FakeClock", "TokenBucket", "progress_bar"]


class TokenBucket:
    """At most ``rate`` events per second on average, in bursts of at most ``burst``.

    Tokens flow in at ``rate`` per second up to ``burst`` (a tenth of a second's worth by
    default, at least 1), and the bucket starts full. ``clock`` and ``sleep`` are injectable so
    tests can drive it without waiting.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError(f"rate must be positive events per second, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock, self._sleep = clock, sleep
        self._tokens, self._updated = self.burst, clock()

    def acquire(self, wanted: int, timeout: float) -> int:
        """Take up to ``wanted`` tokens, waiting at most ``timeout`` seconds for them to flow
        in (never for more than a full bucket); returns how many were taken, possibly 0."""
        enough = min(float(wanted), self.burst)
        self._refill()
        if self._tokens < enough and timeout > 0:
            # One sleep for exactly what is missing: a loop would spin on rounding errors.
            self._sleep(min((enough - self._tokens) / self.rate, timeout))
            self._refill()
        taken = min(wanted, int(self._tokens + 1e-9))
        self._tokens -= taken
        return taken

    def wait(self, count: int) -> None:
        """Block until ``count`` tokens have been taken."""
        while count > 0:
            count -= self.acquire(count, timeout=count / self.rate + 1.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class FakeClock:
    """A clock that moves only when something sleeps: for tests and examples of pacing."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


def progress_bar(total: int | None, description: str, *, enabled: bool = True) -> tqdm[Any]:
    """A tqdm bar on stderr, shown only when ``enabled`` and stderr is a terminal."""
    # disable=None is tqdm's own "off unless a TTY" switch.
    return tqdm(total=total, desc=description, unit="event", disable=None if enabled else True)
