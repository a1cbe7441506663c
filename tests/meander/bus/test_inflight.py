"""Batches in flight: offsets are committed only once their output is stored, in order."""

from __future__ import annotations

import pytest

from meander.bus import (
    Consumer,
    Delivered,
    MemoryBroker,
    MemoryBus,
    Record,
    Sending,
    TopicPartition,
)
from meander.bus.inflight import InFlight
from meander.exceptions import BusError

IN = TopicPartition("in", 0)


class Held(Sending):
    """A batch whose acknowledgement the test hands out: pending, stored, or failed."""

    def __init__(self) -> None:
        self.outcome: BusError | str | None = "pending"
        self.waited: list[float | None] = []

    def done(self) -> bool:
        return self.outcome != "pending"

    def wait(self, timeout: float | None = None) -> list[Delivered]:
        self.waited.append(timeout)
        if self.outcome == "pending":
            self.outcome = None  # a wait that lasts long enough sees it stored
        if isinstance(self.outcome, BusError):
            raise self.outcome
        return []


@pytest.fixture
def consumer() -> Consumer:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"in": 1})
    bus.publish([Record("in", str(i).encode()) for i in range(30)])
    return bus.subscribe(["in"], group="g")


def test_nothing_is_committed_before_its_output_is_stored(consumer: Consumer) -> None:
    flights = InFlight(consumer)
    first, second = Held(), Held()
    flights.add(first, consumer.consume(10))
    flights.add(second, consumer.consume(10))

    assert flights.settle() == 0 and consumer.committed(IN) is None
    second.outcome = None  # the later batch is stored first: still nothing to commit
    assert flights.settle() == 0 and consumer.committed(IN) is None
    first.outcome = None
    assert flights.settle() == 20 and consumer.committed(IN) == 20
    assert len(flights) == 0


def test_a_failed_batch_rewinds_to_the_first_offset_in_flight_and_raises(
    consumer: Consumer,
) -> None:
    flights = InFlight(consumer)
    stored, failed, after = Held(), Held(), Held()
    flights.add(stored, consumer.consume(5))
    flights.add(failed, consumer.consume(5))
    flights.add(after, consumer.consume(5))
    stored.outcome, failed.outcome, after.outcome = None, BusError("broker said no"), None

    with pytest.raises(BusError, match="broker said no") as raised:
        flights.settle()

    assert "read again from" in str(raised.value)
    assert len(flights) == 0
    assert consumer.committed(IN) == 5  # what was stored before the failure stays committed
    assert [m.offset for m in consumer.consume(100)] == list(range(5, 30))


def test_too_many_events_in_flight_wait_for_the_oldest_batches(consumer: Consumer) -> None:
    flights = InFlight(consumer, max_events=12, timeout=3.0)
    held = [Held() for _ in range(4)]
    for sending, size in zip(held[:3], (5, 5, 1), strict=True):
        flights.add(sending, consumer.consume(size))
    assert all(sending.waited == [] for sending in held)  # 11 messages: within the bound

    flights.add(held[3], consumer.consume(7))  # 18: the oldest two land, 8 are left

    assert held[0].waited == [3.0] and held[1].waited == [3.0]
    assert held[2].waited == held[3].waited == []
    assert len(flights) == 2


def test_many_small_batches_within_the_bound_wait_for_nothing(consumer: Consumer) -> None:
    flights = InFlight(consumer, max_events=30)
    held = [Held() for _ in range(30)]
    for sending in held:
        flights.add(sending, consumer.consume(1))

    assert all(sending.waited == [] for sending in held) and len(flights) == 30


def test_flush_waits_for_everything_and_commits_it(consumer: Consumer) -> None:
    flights = InFlight(consumer)
    held = [Held(), Held()]
    for sending in held:
        flights.add(sending, consumer.consume(7))

    flights.flush(timeout=1.0)

    assert consumer.committed(IN) == 14 and len(flights) == 0
    assert all(sending.waited == [1.0] for sending in held)


def test_flush_commits_what_was_stored_before_a_failure(consumer: Consumer) -> None:
    flights = InFlight(consumer)
    stored, failed = Held(), Held()
    flights.add(stored, consumer.consume(4))
    flights.add(failed, consumer.consume(4))
    failed.outcome = BusError("gone")

    with pytest.raises(BusError):
        flights.flush()

    assert consumer.committed(IN) == 4


def test_a_batch_that_read_nothing_is_not_tracked(consumer: Consumer) -> None:
    flights = InFlight(consumer)
    flights.add(Held(), [])
    assert len(flights) == 0


def test_commits_are_paced_and_flush_commits_what_waited(
    consumer: Consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr("meander.bus.inflight.time.monotonic", lambda: clock[0])
    flights = InFlight(consumer, commit_every=0.5)
    for _ in range(3):
        stored = Held()
        stored.outcome = None
        flights.add(stored, consumer.consume(5))
        clock[0] += 0.2
        flights.settle()
    # At 100.2 the first batch was committed; 100.4 and 100.6 were within 0.5 s of it.
    assert consumer.committed(IN) == 5
    clock[0] += 0.2  # 100.8: half a second since the last commit
    assert flights.settle() == 0 and consumer.committed(IN) == 15
    flights.add(Held(), consumer.consume(5))
    flights.flush(timeout=1.0)
    assert consumer.committed(IN) == 20
