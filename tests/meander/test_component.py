"""Running components: each in a thread of its own, stopped together, closed at the end."""

from __future__ import annotations

import threading

import pytest

from meander.component import Component, run_in_threads


class Recorder(Component):
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.stepped = threading.Event()
        self.threads: set[str] = set()
        self.closed = False

    def step(self, timeout: float = 0.0) -> int:
        self.threads.add(threading.current_thread().name)
        self.stepped.set()
        if self.fail:
            raise RuntimeError("a bad batch")
        return 1

    def close(self) -> None:
        self.closed = True


def test_each_component_steps_in_its_own_thread_until_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    first, second = Recorder("first"), Recorder("second", fail=True)
    runner = threading.Thread(target=run_in_threads, args=([first, second], stop))
    runner.start()
    assert first.stepped.wait(30) and second.stepped.wait(30)
    stop.set()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert first.threads == {"meander first"} and second.threads == {"meander second"}
    assert first.closed and second.closed  # a failing step neither stops nor leaks the other
    assert "second: step failed; carrying on" in caplog.text
