"""Running components: each in a thread of its own, stopped together, closed at the end."""

from __future__ import annotations

import gc
import threading

import pytest

from meander.component import (
    YOUNG_COLLECTION_EVERY,
    Component,
    collection_paused,
    run_in_threads,
    run_until_stopped,
)


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


class Twice(Component):
    name = "twice"

    def __init__(self, stop: threading.Event, freezes: list[int]) -> None:
        self.stop, self.rounds, self.freezes = stop, 0, freezes
        self.frozen_at = [0, 0, 0]
        self.freezes_before = [0, 0, 0]
        self.young_every = [0, 0, 0]

    def step(self, timeout: float = 0.0) -> int:
        self.frozen_at[self.rounds] = gc.get_freeze_count()
        self.freezes_before[self.rounds] = len(self.freezes)
        self.young_every[self.rounds] = gc.get_threshold()[0]
        self.rounds += 1
        if self.rounds == 3:
            self.stop.set()
        return 1


def test_what_is_alive_before_and_after_the_first_busy_round_is_left_out_of_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    freezes: list[int] = []
    freeze = gc.freeze

    def counted() -> None:
        freezes.append(1)
        freeze()

    monkeypatch.setattr(gc, "freeze", counted)
    component = Twice(stop, freezes)
    thresholds = gc.get_threshold()
    before = thresholds[0]
    gc.unfreeze()
    try:
        run_until_stopped([component], stop)
        # What was alive before the first round (the libraries), then again after it, and no
        # more: the count of frozen objects itself may shrink as other threads free some.
        assert component.frozen_at[0] > 10_000 and component.freezes_before[0] == 1
        assert component.freezes_before[1:] == [2, 2] and len(freezes) == 2
        # The youngest generation collected less often once the heap is frozen; as before after.
        assert component.young_every == [before, YOUNG_COLLECTION_EVERY, YOUNG_COLLECTION_EVERY]
        assert gc.get_threshold() == thresholds
    finally:
        gc.unfreeze()


def test_the_collector_is_paused_within_the_block_and_as_it_was_after_it() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("a build that failed")
    assert gc.isenabled()  # on again, even after a failure
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # paused by someone else before: left paused
    finally:
        gc.enable()


class Joining(Component):
    """Works from its third step on, as a group member once the group gave it partitions."""

    name = "joining"

    def __init__(self, stop: threading.Event) -> None:
        self.steps = 0
        self.stop = stop

    def step(self, timeout: float = 0.0) -> int:
        self.steps += 1
        if self.steps == 6:
            self.stop.set()
        return 0

    def working(self) -> bool:
        return self.steps >= 3


def test_a_component_says_once_when_it_starts_working(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    caplog.set_level("INFO", logger="meander.component")

    run_until_stopped([Joining(stop)], stop, idle_timeout=0.0)

    said = [r for r in caplog.records if getattr(r, "working", False)]
    assert [r.getMessage() for r in said] == ["joining: working"]
