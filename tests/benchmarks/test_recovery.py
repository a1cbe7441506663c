"""The recovery benchmark's own arithmetic (its runs need a broker and minutes: `make bench`)."""

from __future__ import annotations

import os
import time

from benchmarks.recovery import _cpu_seconds, _summary


def test_a_process_cpu_seconds_are_read_from_proc_as_the_process_counts_them() -> None:
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass  # spend some CPU
    read = _cpu_seconds(os.getpid())
    # /proc counts in clock ticks (1/100 s), the process itself more finely.
    assert time.process_time() - 0.05 <= read + 0.05
    assert read >= 0.3


def test_the_summary_gives_medians_and_the_slowest_restart_of_each_component() -> None:
    def restart(working: float) -> dict[str, float]:
        return {
            "built": working - 1,
            "working": working,
            "cpu_until_built": 2.0,
            "cpu_until_working": 2.5,
        }

    summary = _summary({"learner": [restart(9.0), restart(5.0), restart(14.0)], "notifier": []})

    assert summary == {
        "learner": {
            "built": 8.0,
            "working": 9.0,
            "cpu_until_built": 2.0,
            "cpu_until_working": 2.5,
            "slowest_working": 14.0,
        }
    }  # a component never restarted in a mode has no row
