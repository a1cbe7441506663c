"""A librdkafka transaction call that blocks past its own timeout is given up on.

librdkafka's coordinator requests ignore their timeout while the group coordinator is down
(librdkafka issue 5456): a predictor on confluent-kafka, exactly once, hung in
send_offsets_to_transaction after a broker restart, for good, and did not stop on SIGTERM.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from meander.bus import Record, TopicPartition
from meander.exceptions import BusUnavailable

pytest.importorskip("confluent_kafka")


class Producer:
    """Stands for librdkafka's transactional producer, whose offsets call never returns."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def begin_transaction(self) -> None:
        pass

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self.released.wait()  # as librdkafka with its coordinator gone: the timeout is ignored

    def commit_transaction(self, timeout: float) -> None:
        raise AssertionError("committed after the offsets never went")


class Member:
    def group_metadata(self) -> object:
        return object()


@pytest.mark.timeout(20)
def test_an_offsets_call_that_never_returns_fails_the_transaction_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meander.bus import confluent_transactions
    from meander.bus.confluent_transactions import ConfluentTransactional

    class Sending:  # the records are stored at once
        def __init__(self, *args: Any) -> None:
            pass

        def hand_over(self) -> None:
            pass

        def wait(self) -> None:
            pass

    monkeypatch.setattr(confluent_transactions, "ConfluentSending", Sending)
    transactions = ConfluentTransactional("p", lambda _: Producer(), lambda _: None, "b", 1.0)
    producer = Producer()
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="sending the offsets to the transaction did not end"):
        transactions._transact(
            producer, [Record("s.predictions", b"{}")], Member(), {TopicPartition("s.events", 0): 1}
        )
    assert time.monotonic() - started < 5.0
    producer.released.set()
