"""Pure helpers of the hot-path benchmark: percentiles, rates, RSS parsing and pacing.

Nothing here touches a broker, so tests/benchmarks/test_hotpath.py checks it directly.

>>> percentiles([1.0, 2.0, 3.0, 4.0], (50,))
{'p50_ms': 2.5}
>>> rss_kib("Name:\\tpython\\nVmRSS:\\t  123456 kB\\n")
123456
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "Pacer",
    "cpu_seconds",
    "percentiles",
    "rate",
    "read_cpu_seconds",
    "read_rss_kib",
    "rss_kib",
    "slow_spells",
    "spread",
]


def percentiles(values: Sequence[float], qs: Iterable[int] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50_ms": ..., ...}`` of ``values`` (milliseconds), linear interpolation.

    >>> percentiles([10.0] * 9 + [100.0], (50, 99))
    {'p50_ms': 10.0, 'p99_ms': 91.9}
    """
    if not values:
        raise ValueError("no latencies were measured: did any prediction arrive?")
    array = np.asarray(values, dtype=float)
    return {f"p{q}_ms": round(float(np.percentile(array, q)), 2) for q in qs}


def slow_spells(
    answers: Sequence[tuple[float, float]], over_ms: float, gap: float = 0.05, most: int = 10
) -> list[dict[str, float]]:
    """When the answers slower than ``over_ms`` came, as spells: slow answers read less than
    ``gap`` seconds apart are one spell. ``answers`` are (seconds since the first timed answer
    was read, latency in ms) in the order read; the ``most`` spells with the most answers are
    kept, in time order. One spell holding most slow answers is a stall of something (a
    collection, the broker, the machine); many small ones are a tail spread over the run.

    >>> slow_spells([(0.0, 5.0), (1.0, 80.0), (1.01, 60.0), (2.0, 30.0)], 25.0)
    [{'at_s': 1.0, 'answers': 2, 'max_ms': 80.0}, {'at_s': 2.0, 'answers': 1, 'max_ms': 30.0}]
    """
    spells: list[dict[str, float]] = []
    last = -float("inf")
    for at, latency in answers:
        if latency <= over_ms:
            continue
        if at - last > gap:
            spells.append({"at_s": round(at, 2), "answers": 0, "max_ms": 0.0})
        spell = spells[-1]
        spell["answers"] += 1
        spell["max_ms"] = round(max(spell["max_ms"], latency), 2)
        last = at
    kept = sorted(spells, key=lambda spell: -spell["answers"])[:most]
    return sorted(kept, key=lambda spell: spell["at_s"])


def spread(values: Sequence[float | None]) -> dict[str, object]:
    """The runs' values of one figure, with their least, median and greatest.

    >>> spread([3.0, 1.0, 2.0])
    {'values': [3.0, 1.0, 2.0], 'min': 1.0, 'median': 2.0, 'max': 3.0}
    """
    known = sorted(v for v in values if v is not None)
    if not known:
        return {"values": list(values), "min": None, "median": None, "max": None}
    return {
        "values": list(values),
        "min": known[0],
        "median": round(float(np.median(known)), 2),
        "max": known[-1],
    }


def rate(events: int, seconds: float) -> float:
    """Events per second, rounded; a zero-length span is an error, not infinity.

    >>> rate(1_000, 0.5)
    2000.0
    """
    if seconds <= 0:
        raise ValueError(f"cannot rate {events} events over {seconds} s: the span must be > 0")
    return round(events / seconds, 1)


def rss_kib(status: str) -> int:
    """The resident set size in KiB from the text of ``/proc/PID/status``.

    >>> rss_kib("VmPeak:\\t 10 kB\\nVmRSS:\\t 42 kB\\n")
    42
    """
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError("no VmRSS line in this status text: is the process a zombie or gone?")


def read_rss_kib(pid: int) -> int:
    """The current resident set size of process ``pid``, in KiB (Linux only)."""
    with open(f"/proc/{pid}/status") as status:
        return rss_kib(status.read())


def cpu_seconds(stat: str) -> float:
    """The CPU time (user and system, all threads) in a ``/proc/<pid>/stat`` line, in seconds.

    >>> ticks = os.sysconf("SC_CLK_TCK")
    >>> cpu_seconds(f"7 (meander run) S 1 " + "0 " * 9 + f"{ticks} {ticks // 2} 0 0")
    1.5
    """
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used so far, in seconds (Linux only)."""
    with open(f"/proc/{pid}/stat") as stat:
        return cpu_seconds(stat.read())


class Pacer:
    """Says how many events are due by now at ``per_second``, for a paced producer.

    Counting what is due since the start (rather than sleeping between sends) keeps the
    offered load exact on average even when one send runs late.

    >>> pacer = Pacer(1_000.0, started=0.0)
    >>> pacer.due(now=0.25)
    250
    >>> pacer.sent(250); pacer.due(now=0.3)
    50
    """

    def __init__(self, per_second: float, *, started: float | None = None) -> None:
        if per_second <= 0:
            raise ValueError(f"an offered load must be positive, got {per_second} events/s")
        self.per_second = per_second
        self.started = time.perf_counter() if started is None else started
        self.count = 0

    def due(self, now: float | None = None) -> int:
        """Events to send now to be on schedule (0 when ahead)."""
        moment = time.perf_counter() if now is None else now
        return max(0, int((moment - self.started) * self.per_second) - self.count)

    def sent(self, count: int) -> None:
        """Record that ``count`` events went out."""
        self.count += count

    def next_due(self) -> float:
        """When the next event is due (a ``time.perf_counter()`` moment): sleeping until then
        rather than polling keeps a paced producer off the CPU it shares with what it measures.

        >>> pacer = Pacer(1_000.0, started=0.0)
        >>> pacer.sent(250); pacer.next_due()
        0.251
        """
        return self.started + (self.count + 1) / self.per_second
