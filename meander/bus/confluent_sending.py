"""Records handed to confluent-kafka's producer (librdkafka), each produced once.

librdkafka's idempotent producer retries a record itself until it is stored (the bus never lets
it give one up: ``message.timeout.ms`` 0), and the broker drops the repeats; a record produced
again would get a new sequence number and be stored twice. So a :class:`ConfluentSending`
produces each record once and, after a time-out, is waited on again. Records the producer's
queue has no room for yet are kept and produced by a later :meth:`~ConfluentSending.done` or
:meth:`~ConfluentSending.wait`: never lost, never sent twice.

librdkafka reports each record's fate through a delivery callback, which only runs inside the
producer's ``poll``: ``done`` polls without waiting, ``wait`` polls until every record is in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Producer

from meander.bus.base import Delivered, Record, Sending, unknown_topic
from meander.exceptions import BusError, BusUnavailable, InvalidTimestamp, MessageTooLarge

__all__ = ["ConfluentSending", "delivery_error"]

_POLL_SECONDS = 0.05  # the longest a wait polls at once: the deadline stays close


class ConfluentSending(Sending):
    """Records in librdkafka's producer queue, acknowledged through delivery callbacks."""

    def __init__(
        self, producer: Producer, records: Sequence[Record], bootstrap: str, timeout: float
    ) -> None:
        self._producer = producer
        self._records = records
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._delivered: list[Any] = [None] * len(records)  # librdkafka's messages
        self._errors: dict[int, KafkaError] = {}
        self._handed = 0  # records before this position are in the producer's queue
        self._pending = len(records)  # records whose delivery callback has not run yet

    def hand_over(self) -> None:
        """Produce every record not produced yet, as far as the producer's queue has room."""
        producer, records = self._producer, self._records
        while self._handed < len(records):
            record = records[self._handed]
            try:
                producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    on_delivery=partial(self._on_delivery, self._handed),
                    timestamp=record.timestamp_ms,
                    headers=list(record.headers) if record.headers else None,
                    partition=-1 if record.partition is None else record.partition,  # -1: any
                )
            except BufferError:
                producer.poll(0)  # serve callbacks, which frees room; the rest waits for wait()
                return
            self._handed += 1

    def _on_delivery(self, position: int, error: KafkaError | None, message: Any) -> None:
        if error is None:
            self._delivered[position] = message  # made a Delivered only if one is asked for
        else:
            self._errors[position] = error
        self._pending -= 1

    def done(self) -> bool:
        if self._pending:
            self.hand_over()
            self._producer.poll(0)
        return self._pending == 0

    def refused(self) -> list[int] | None:
        return sorted(self._errors) if self._errors else None

    def wait(self, timeout: float | None = None) -> list[Delivered]:
        seconds = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        while not self.done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise BusUnavailable(
                    f"Kafka at {self._bootstrap} did not acknowledge {self._pending} of "
                    f"{len(self._records)} records within {seconds:.0f}s; they may still be "
                    "stored: wait on this sending again rather than send them again"
                )
            self._producer.poll(min(left, _POLL_SECONDS))
        if self._errors:
            position = min(self._errors)
            raise delivery_error(self._records[position], position, self._errors[position])
        return [Delivered(m.topic(), m.partition(), m.offset()) for m in self._delivered]


def delivery_error(record: Record, position: int, error: KafkaError) -> BusError:
    """The meander error of a record the broker or librdkafka refused for good."""
    code = error.code()
    where = f"record {position} for {record.topic}"
    if code == KafkaError.MSG_SIZE_TOO_LARGE:
        return MessageTooLarge(f"{where} is too large for the broker ({error.str()})")
    if code == KafkaError.INVALID_TIMESTAMP:
        return InvalidTimestamp(f"{where}: the broker refused its timestamp ({error.str()})")
    if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
        return unknown_topic(record.topic)
    return BusError(f"Kafka refused {where}: {error.str()}")
