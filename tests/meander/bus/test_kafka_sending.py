"""Waiting on a send while kafka-python's sender thread completes its batches."""

from __future__ import annotations

from typing import Any

from meander.bus.kafka_sending import KafkaSending, Placed


class Future:
    """A batch's future as kafka-python completes it: ``(base_offset, log_append_time, errors)``."""

    def __init__(self) -> None:
        self.is_done = False
        self.exception: BaseException | None = None
        self.value: tuple[int, int, Any] | None = None

    def succeed(self, base_offset: int) -> None:
        self.value, self.is_done = (base_offset, -1, None), True

    def wait(self, timeout: float) -> bool:
        return self.is_done


class CompletedMeanwhile(KafkaSending):
    """The sender acknowledges the last batch between ``done()`` and the look for one pending."""

    def hand_over(self) -> None:
        for future in self._futures:
            if not future.is_done:
                future.succeed(base_offset=41)


def test_a_batch_acknowledged_while_the_wait_looked_away_is_delivered() -> None:
    batch = Placed("events", 0, [0, 1], encoded=None)  # type: ignore[arg-type]
    sending = CompletedMeanwhile(
        [batch],
        [object(), object()],
        1_000,
        producer=None,
        bootstrap="-",
        timeout=5.0,  # type: ignore[list-item,arg-type]
    )
    sending._futures[0] = Future()
    delivered = sending.wait()
    assert [(d.topic, d.partition, d.offset) for d in delivered] == [
        ("events", 0, 41),
        ("events", 0, 42),
    ]
