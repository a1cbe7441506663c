"""The confluent-kafka consumer asks again when the broker's answer is one that passes.

librdkafka returns NOT_LEADER_FOR_PARTITION from an offsets request at once, where the Java
client and kafka-python wait it out: a learner's first step on a stream whose topics had just
been created failed with it (2 of about 8 runs of test_any_client's confluent cases).
"""

from __future__ import annotations

import time

import pytest

from meander.exceptions import BusUnavailable

confluent_kafka = pytest.importorskip("confluent_kafka")


def consumer(timeout: float) -> object:
    from meander.bus.confluent_consumer import ConfluentConsumer

    return ConfluentConsumer(None, None, from_beginning=True, bootstrap="b:9092", timeout=timeout)


def failing(code: int, times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def ask() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise confluent_kafka.KafkaException(confluent_kafka.KafkaError(code))
        return "answer"

    return calls, ask


def test_an_answer_that_passes_is_asked_again_until_it_comes() -> None:
    calls, ask = failing(confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION, 3)
    assert consumer(5.0)._asking("end offsets", ask) == "answer"  # type: ignore[attr-defined]
    assert len(calls) == 4


def test_one_that_does_not_pass_or_outlasts_the_timeout_is_unavailable() -> None:
    calls, ask = failing(confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED, 1)
    with pytest.raises(BusUnavailable, match="did not give end offsets within 5s"):
        consumer(5.0)._asking("end offsets", ask)  # type: ignore[attr-defined]
    assert len(calls) == 1
    calls, ask = failing(confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION, 10**6)
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="NOT_LEADER_FOR_PARTITION"):
        consumer(0.3)._asking("end offsets", ask)  # type: ignore[attr-defined]
    assert 0.3 <= time.monotonic() - started < 2.0
