"""Records handed to kafka-python's producer, each sent once.

The idempotent producer retries a batch itself and the broker drops the repeats by producer id
and sequence number; records sent again as a new batch get new sequence numbers, and the broker
stores them twice. So a :class:`KafkaSending` hands each record batch over once and, after a
time-out, is waited on again. It hands a batch over again only when the producer gave up on it
(its future failed with a retriable error: the delivery timeout, which
:class:`~meander.bus.kafka.KafkaBus` sets beyond any outage, or a producer closed with it).
Records whose partitions cannot be known yet (no metadata for ``max_block_ms``) are not handed
over at all: :meth:`~meander.bus.kafka.KafkaBus.send` raises ``BusUnavailable``.

Each partition's records of one send are written as whole record batches
(:mod:`meander.bus.kafka_batches`): one future per batch, in the order they were sent.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError, RetriableError

from meander.bus.base import Delivered, Record, Sending
from meander.bus.kafka_batches import Encoded, append_batch, encode_batches
from meander.bus.kafka_cluster import UNSENT
from meander.bus.partitioner import partitions_of
from meander.exceptions import BusError, BusUnavailable, MessageTooLarge

__all__ = [
    "KafkaSending",
    "Placed",
    "close_producer",
    "delivery_errors",
    "failure",
    "place",
    "write",
]

log = logging.getLogger(__name__)


class Placed(NamedTuple):
    """One record batch of a send: where it goes, the positions in the send of its records
    (in order), and its bytes."""

    topic: str
    partition: int
    positions: list[int]
    encoded: Encoded


class KafkaSending(Sending):
    """Record batches in kafka-python's producer: one future per batch once it is handed over,
    completed by the producer's sender as the broker acknowledges it."""

    def __init__(
        self,
        batches: Sequence[Placed],
        records: Sequence[Record],
        limit: int,
        producer: KafkaProducer,
        bootstrap: str,
        timeout: float,
        watch: Callable[[KafkaProducer], AbstractContextManager[None]] | None = None,
    ) -> None:
        self._batches = batches
        self._sent = records
        self._limit = limit
        self._records = len(records)
        self._futures: list[Any] = [None] * len(batches)
        self._starts = [0] * len(batches)  # where each batch's records begin in the one sent
        self._producer = producer
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._checked = 0  # futures before this index are known to have succeeded
        # Puts the producer aside when an error left it failed (KafkaBus._replacing_failed).
        self._watch = watch or (lambda _producer: nullcontext())

    def hand_over(self) -> None:
        """Hand over every batch not handed over yet, or given up on by the producer."""
        handed = False
        try:
            for index, future in enumerate(self._futures):
                if future is not None and not _retriable(future):
                    continue
                if future is not None:
                    log.warning(
                        "sending again a batch the producer gave up on: %s", failure(future)
                    )
                topic, partition, positions, encoded = self._batches[index]
                records = [self._sent[position] for position in positions]
                self._futures[index], self._starts[index] = append_batch(
                    self._producer, topic, partition, encoded, records, self._limit
                )
                handed = True
        finally:
            if handed:
                self._producer._sender.wakeup()

    def done(self) -> bool:
        futures = self._futures
        while self._checked < len(futures) and _succeeded(futures[self._checked]):
            self._checked += 1
        if self._checked == len(futures):
            return True
        # Done also when a batch failed for good (wait raises it); not while one is unsent or
        # is to be sent again.
        rest = itertools.islice(futures, self._checked, None)
        return all(f is not None and f.is_done and not _retriable(f) for f in rest)

    def refused(self) -> list[int]:
        return sorted(
            position
            for batch, future in zip(self._batches, self._futures, strict=True)
            if future is None or failure(future) is not None
            for position in batch.positions
        )

    def wait(self, timeout: float | None = None) -> list[Delivered]:
        seconds = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        with (
            self._watch(self._producer),
            delivery_errors(self._bootstrap, self._records, seconds),
        ):
            while not self.done():
                self.hand_over()
                # The producer's sender completes futures meanwhile: the last one may have
                # succeeded since done() looked, which the next round of done() sees.
                pending = next((f for f in self._futures if not f.is_done or _retriable(f)), None)
                if pending is None:
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or not (pending.is_done or pending.wait(left)):
                    raise KafkaTimeoutError("not every record was acknowledged in time")
            delivered: list[Delivered | None] = [None] * self._records
            for (topic, partition, positions, _), future, start in zip(
                self._batches, self._futures, self._starts, strict=True
            ):
                error = failure(future)
                if error is not None:
                    raise error
                base_offset = future.value[0] + start
                for at, position in enumerate(positions):
                    delivered[position] = Delivered(topic, partition, base_offset + at)
        return delivered  # type: ignore[return-value]  # every position is filled


def place(
    producer: KafkaProducer, records: Sequence[Record], keyless: Iterator[int]
) -> dict[tuple[str, int], list[int]]:
    """The positions of ``records`` per (topic, partition), in the order they were sent.

    Keys are placed as Kafka's default partitioner places them (murmur2); kafka-python hashes
    each key in pure Python as it sends it, and hashing a batch's keys together
    (:func:`~meander.bus.partitioner.partitions_of`) costs a fraction of that. The keyless
    records of one send share a partition, the next one from ``keyless`` for each send (as a
    sticky partitioner does). Asking the producer for a topic's partitions waits up to
    ``max_block_ms`` for its metadata (``KafkaTimeoutError`` when there is none).
    """
    counts = {topic: len(producer.partitions_for(topic)) for topic in {r.topic for r in records}}
    keyed: dict[str, list[int]] = {}
    for position, record in enumerate(records):
        if record.partition is None and record.key is not None:
            keyed.setdefault(record.topic, []).append(position)
    hashed: dict[int, int] = {}
    for topic, positions in keyed.items():
        keys = [records[position].key or b"" for position in positions]
        hashed.update(zip(positions, partitions_of(keys, counts[topic]), strict=True))
    # One pass in the given order: a partition's records keep the order they were sent in.
    placed: dict[tuple[str, int], list[int]] = {}
    sticky: dict[str, int] = {}
    for position, record in enumerate(records):
        topic, partition = record.topic, record.partition
        if partition is None:
            partition = hashed.get(position)
            if partition is None:
                partition = sticky.get(topic)
                if partition is None:
                    partition = sticky[topic] = next(keyless) % counts[topic]
        elif not 0 <= partition < counts[topic]:
            raise BusError(f"{topic} has no partition {partition} (has {counts[topic]})")
        placed.setdefault((topic, partition), []).append(position)
    return placed


def write(
    records: Sequence[Record], placed: dict[tuple[str, int], list[int]], limit: int
) -> list[Placed]:
    """Each partition's records as record batches of at most ``limit`` bytes (a larger record
    gets a batch of its own), in order."""
    batches: list[Placed] = []
    for (topic, partition), positions in placed.items():
        at = 0
        for encoded in encode_batches([records[p] for p in positions], limit):
            batches.append(Placed(topic, partition, positions[at : at + encoded.records], encoded))
            at += encoded.records
    return batches


def failure(future: Any) -> BaseException | None:
    """Why a batch's future failed, or None (not done, or stored). kafka-python completes a
    batch's future with ``(base_offset, log_append_time, errors)`` even when the batch failed:
    ``errors`` then gives each record's error (the batch's, unless the broker named records)."""
    if not future.is_done:
        return None
    if future.exception is not None:
        return future.exception  # type: ignore[no-any-return]
    errors = future.value[2]
    return None if errors is None else errors(0)  # type: ignore[no-any-return]


def _retriable(future: Any) -> bool:
    """Whether the producer gave up on a batch for a cause that passes (the delivery timeout)."""
    return isinstance(failure(future), RetriableError)


def _succeeded(future: Any) -> bool:
    return future is not None and future.is_done and failure(future) is None


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


def close_producer(producer: KafkaProducer, timeout: float) -> None:
    """Close ``producer``, waiting at most ``timeout`` for what it holds. kafka-python's close
    raised KafkaTimeoutError when the broker did not answer in time (paused: SIGSTOP), out of
    the bus's close and past the store's, at every component's exit during an outage."""
    try:
        producer.close(timeout=timeout)
    except KafkaTimeoutError:
        log.warning(UNSENT, timeout)
        # What close does past its wait, which kafka-python skips when the wait fails: its
        # sender fails what it holds and stops. Left open, its __del__ raised the same again.
        producer._sender.force_close()
        producer._sender.join(timeout)
        producer.close(timeout=0)
