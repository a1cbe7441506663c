"""Records handed to kafka-python's producer, each sent once.

The idempotent producer retries a record itself and the broker drops the repeats by producer
id and sequence number; a record sent again through a new ``send`` gets a new sequence number,
and the broker stores it twice. So a :class:`KafkaSending` hands each record over once and,
after a time-out, is waited on again. It sends a record again only when the producer never took
it (its buffer or the topic's metadata stayed unavailable for ``max_block_ms``), or gave up on it
(its future failed with a retriable error: the delivery timeout, which
:class:`~meander.bus.kafka.KafkaBus` sets beyond any outage, or a producer closed with it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from meander.bus.base import Delivered, Record, Sending
from meander.bus.partitioner import partitions_of
from meander.exceptions import BusError, BusUnavailable, MessageTooLarge

__all__ = ["KafkaSending", "delivery_errors", "place"]

log = logging.getLogger(__name__)


class KafkaSending(Sending):
    """A batch in kafka-python's producer: one future per record once it is handed over,
    completed by the producer's sender as the broker acknowledges it."""

    def __init__(
        self,
        records: Sequence[Record],
        partitions: Sequence[int | None],
        producer: KafkaProducer,
        bootstrap: str,
        timeout: float,
    ) -> None:
        self._records = records
        self._partitions = partitions
        self._futures: list[Any] = [None] * len(records)
        self._producer = producer
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._checked = 0  # futures before this index are known to have succeeded

    def hand_over(self) -> bool:
        """Send every record not handed over yet, or given up on; False when the producer
        could not take one within ``max_block_ms`` (the rest wait for the next call)."""
        for index, future in enumerate(self._futures):
            if future is not None and not (future.failed() and future.retriable()):
                continue
            if future is not None:
                log.warning("sending again a record the producer gave up on: %s", future.exception)
            record = self._records[index]
            try:
                self._futures[index] = self._producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    partition=self._partitions[index],
                    timestamp_ms=record.timestamp_ms,
                )
            except KafkaTimeoutError:
                return False
        return True

    def done(self) -> bool:
        futures = self._futures
        while self._checked < len(futures) and _succeeded(futures[self._checked]):
            self._checked += 1
        if self._checked == len(futures):
            return True
        # Done also when a record failed for good (wait raises it); not while one is unsent or
        # is to be sent again.
        rest = islice(futures, self._checked, None)
        return all(f is not None and f.is_done and not f.retriable() for f in rest)

    def refused(self) -> list[int]:
        return [i for i, future in enumerate(self._futures) if future is None or future.failed()]

    def wait(self, timeout: float | None = None) -> list[Delivered]:
        seconds = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        with delivery_errors(self._bootstrap, len(self._records), seconds):
            while not self.done():
                self.hand_over()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KafkaTimeoutError("not every record was acknowledged in time")
                self._producer.flush(timeout=left)  # rather than wait out the linger
            for future in self._futures:
                if future.failed():
                    raise future.exception
        return [Delivered(m.topic, m.partition, m.offset) for m in (f.value for f in self._futures)]


def place(producer: KafkaProducer, records: Sequence[Record]) -> list[int | None]:
    """The partition of each record, as Kafka's default partitioner places keys.

    kafka-python hashes each key in pure Python as it sends it; hashing a batch's keys together
    (:func:`~meander.bus.partitioner.partitions_of`) costs a fraction of that. Keyless records
    are left to the producer.
    """
    placed = [record.partition for record in records]
    keyed: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        if record.partition is None and record.key is not None:
            keyed.setdefault(record.topic, []).append(index)
    for topic, indices in keyed.items():
        count = len(producer.partitions_for(topic))
        keys = [records[index].key or b"" for index in indices]
        for index, partition in zip(indices, partitions_of(keys, count), strict=True):
            placed[index] = partition
    return placed


def _succeeded(future: Any) -> bool:
    return future is not None and future.is_done and future.exception is None


@contextmanager
def delivery_errors(bootstrap: str, records: int, seconds: float) -> Iterator[None]:
    """kafka-python's errors in sending as the bus's, saying what to do about them."""
    try:
        yield
    except MessageSizeTooLargeError as error:
        raise MessageTooLarge(f"the broker refused a record as too large: {error}") from error
    except KafkaTimeoutError as error:
        raise BusUnavailable(
            f"Kafka at {bootstrap} did not acknowledge {records} record(s) within "
            f"{seconds:.0f}s: is the broker up? They stay with the producer, which keeps "
            "trying: wait on them again rather than send them again"
        ) from error
    except KafkaError as error:
        raise BusError(f"publishing to Kafka failed: {error}") from error
