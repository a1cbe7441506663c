"""Kafka's murmur2 partitioner, one key at a time and batched, against kafka-python's own."""

from __future__ import annotations

import random
import uuid

import pytest
from kafka.partitioner.default import murmur2 as kafka_murmur2

from meander.bus.partitioner import (
    VECTOR_MIN,
    murmur2,
    murmur2_many,
    partition_of,
    partitions_of,
)


def kafkas(key: bytes) -> int:
    return int(kafka_murmur2(key)) & 0xFFFFFFFF


@pytest.mark.parametrize("length", range(0, 41))
def test_one_key_hashes_as_kafka_does(length: int) -> None:
    rng = random.Random(length)
    for _ in range(50):
        key = rng.randbytes(length)
        assert murmur2(key) == kafkas(key)


def test_a_batch_of_mixed_lengths_hashes_as_one_key_at_a_time() -> None:
    rng = random.Random(11)
    # Lengths above VECTOR_MIN keys take the vectorised path, the rest the scalar one; shuffled
    # so that each group's hashes must find their way back to their own places.
    keys = [rng.randbytes(length) for length in (1, 3, 7, 32, 33, 35) for _ in range(VECTOR_MIN)]
    keys += [rng.randbytes(rng.randrange(0, 80)) for _ in range(300)]
    keys += [uuid.uuid4().hex.encode() for _ in range(500)]
    rng.shuffle(keys)
    assert murmur2_many(keys) == [kafkas(key) for key in keys]


def test_empty_and_high_bit_keys() -> None:
    keys = [b""] * VECTOR_MIN + [b"\xff" * 36] * VECTOR_MIN + [b"\x80\x00\x00"] * VECTOR_MIN
    assert murmur2_many(keys) == [kafkas(key) for key in keys]
    assert murmur2_many([]) == []


def test_partitions_match_the_java_client() -> None:
    # Utils.toPositive(Utils.murmur2(key)) % 4 for "k0".."k6", from Kafka's Java client.
    keys = [f"k{i}".encode() for i in range(7)]
    assert [partition_of(key, 4) for key in keys] == [1, 1, 1, 0, 0, 0, 1]
    many = keys * VECTOR_MIN
    assert partitions_of(many, 4) == [partition_of(key, 4) for key in many]
