"""Pacing: the token bucket on a fake clock, and a paced replay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from meander.producers.pacing import FakeClock, TokenBucket, progress_bar
from meander.producers.replay import FileSource

WriteFile = Callable[[pd.DataFrame, str], Path]  # the write_file fixture (conftest.py)


def _bucket(rate: float, clock: FakeClock, burst: float | None = None) -> TokenBucket:
    return TokenBucket(rate, burst=burst, clock=clock.now, sleep=clock.sleep)


def test_a_long_run_averages_the_rate() -> None:
    clock = FakeClock()
    bucket = _bucket(500.0, clock)
    taken = sum(bucket.acquire(64, timeout=0.5) for _ in range(1_000))
    # The bucket starts with a burst of 50 tokens, then 500 flow in every second.
    assert taken == pytest.approx(50 + 500 * clock.now(), abs=1)
    assert taken > 10_000


def test_a_step_never_waits_longer_than_its_timeout() -> None:
    clock = FakeClock()
    bucket = _bucket(1.0, clock, burst=10)
    assert bucket.acquire(10, timeout=0.0) == 10
    assert bucket.acquire(10, timeout=2.5) == 2
    assert clock.now() == pytest.approx(2.5)


def test_wait_blocks_until_every_token_is_taken() -> None:
    clock = FakeClock()
    bucket = _bucket(100.0, clock)
    bucket.wait(310)
    assert clock.now() == pytest.approx(3.0)  # 10 were in the bucket, 300 flowed in


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0.0)


def test_a_replay_with_a_rate_sleeps_between_rows(
    write_file: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(
        "meander.producers.replay.TokenBucket",
        lambda rate: TokenBucket(rate, clock=clock.now, sleep=clock.sleep),
    )
    path = write_file(pd.DataFrame({"x": range(250), "y": [1] * 250}), "paced.csv")
    assert len(list(FileSource(path, target="y").samples(rate=100.0, progress=False))) == 250
    assert clock.now() == pytest.approx(2.4)  # the first 10 from a full bucket


def test_the_progress_bar_is_off_when_asked_or_without_a_terminal() -> None:
    with progress_bar(10, "off", enabled=False) as bar:
        assert bar.disable
    with progress_bar(10, "no tty") as bar:  # pytest captures stderr: not a terminal
        assert bar.disable
