"""What a benchmark ran on, and how busy the machine was meanwhile.

Throughput and latency on a small machine follow whatever else runs on it, so every run of the
hot-path benchmark records the machine once and, per run, the load averages before and after
and the share of all CPUs that was busy in between (from ``/proc/stat``: this benchmark's own
processes, the broker and everything else), so that a reader can tell a change from noise.

>>> busy_share((100, 300), (160, 400))
0.6

Within a latency part, :func:`sampled` reads ``/proc/stat`` every 0.1 s on a thread of its own:
how many cores were busy on average, and in what share of those intervals every core was
(:func:`busy_cores`), which tells a loop that is slow from a machine that is full.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = ["busy_cores", "busy_share", "cpu_times", "describe", "load", "sampled"]


def describe() -> dict[str, Any]:
    """The machine and the software the figures depend on."""
    return {
        "cpu": _first_line("/proc/cpuinfo", "model name") or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka_python": version("kafka-python"),
        "river": version("river"),
        "confluent_kafka": _installed("confluent-kafka"),  # the reference loop's client
    }


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_times(stat: str | None = None) -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine in clock ticks, from ``/proc/stat``."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    fields = [int(value) for value in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of all CPUs that was busy between two :func:`cpu_times` readings."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 2) if total > 0 else None


@contextmanager
def load(into: dict[str, Any]) -> Iterator[None]:
    """Record in ``into`` the load averages before and after the block, and how busy the
    machine's CPUs were during it."""
    into["load_before"] = [round(value, 2) for value in os.getloadavg()]
    started = cpu_times()
    try:
        yield
    finally:
        into["load_after"] = [round(value, 2) for value in os.getloadavg()]
        into["cpu_busy_share"] = busy_share(started, cpu_times())


def busy_cores(readings: list[tuple[int, int]], cpus: int) -> dict[str, float | None]:
    """From successive :func:`cpu_times` readings: the cores busy on average, and the share of
    the intervals between readings in which at least 95 % of every core was busy.

    >>> busy_cores([(0, 0), (10, 20), (30, 40), (40, 60)], cpus=2)
    {'machine_busy_cores': 1.33, 'machine_full_share': 0.33}
    """
    spans = [
        (busy - was_busy, total - was_total)
        for (was_busy, was_total), (busy, total) in pairwise(readings)
        if total > was_total
    ]
    if not spans:
        return {"machine_busy_cores": None, "machine_full_share": None}
    busy, total = sum(b for b, _ in spans), sum(t for _, t in spans)
    full = sum(1 for b, t in spans if b >= 0.95 * t)
    return {
        "machine_busy_cores": round(cpus * busy / total, 2),
        "machine_full_share": round(full / len(spans), 2),
    }


@contextmanager
def sampled(into: dict[str, Any], every: float = 0.1) -> Iterator[None]:
    """Record in ``into`` what :func:`busy_cores` says of the block, read every ``every`` s."""
    readings = [cpu_times()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            readings.append(cpu_times())

    sampler = threading.Thread(target=sample, name="cpu-sampler", daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
        readings.append(cpu_times())
        into.update(busy_cores(readings, os.cpu_count() or 1))


def _first_line(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def _meminfo_kib(key: str) -> int:
    found = _first_line("/proc/meminfo", key)
    return int(found.split()[0]) if found else 0
