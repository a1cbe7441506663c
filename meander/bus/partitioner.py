"""Kafka's default partitioner: the partition a key lands on, bit for bit as the Java client.

Kafka hashes a key with its variant of MurmurHash2 (``Utils.murmur2``, seed ``0x9747b28c``) and
takes the hash's low 31 bits modulo the partition count (``Utils.toPositive``). The embedded bus
uses the same function so that keys land alike on both buses. Hashing in Python costs a few
microseconds a key, so a batch hashes its keys of one length together, column by column, with
numpy's wrapping 32-bit arithmetic.

>>> murmur2(b"k0")
3590428993
>>> partition_of(b"k0", 4), partitions_of([b"k0", b"k3"], 4)
(1, [1, 0])
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["murmur2", "murmur2_many", "partition_of", "partitions_of"]

SEED = 0x9747B28C
MIX = 0x5BD1E995
WORD = 0xFFFFFFFF
POSITIVE = 0x7FFFFFFF
# Below this many keys of one length, numpy's fixed cost per call outweighs what it saves.
VECTOR_MIN = 24


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 hash of ``key``, as an unsigned 32-bit integer."""
    length = len(key)
    h = SEED ^ length
    for k in _words(length >> 2).unpack_from(key):
        k = k * MIX & WORD
        k = (k ^ k >> 24) * MIX & WORD
        h = h * MIX & WORD ^ k
    tail = length & 3
    if tail:
        h = (h ^ int.from_bytes(key[length - tail :], "little")) * MIX & WORD
    h = (h ^ h >> 13) * MIX & WORD
    return h ^ h >> 15


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """``murmur2`` of each key, in order; much cheaper per key than one call each."""
    hashes = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    for length, indices in by_length.items():
        if len(indices) < VECTOR_MIN or length < 4:
            for index in indices:
                hashes[index] = murmur2(keys[index])
        else:
            group = _murmur2_same_length([keys[index] for index in indices], length)
            for index, value in zip(indices, group.tolist(), strict=True):
                hashes[index] = value
    return hashes


def partition_of(key: bytes, count: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``count``."""
    return (murmur2(key) & POSITIVE) % count


def partitions_of(keys: Sequence[bytes], count: int) -> list[int]:
    """``partition_of`` each key, in order."""
    return [(h & POSITIVE) % count for h in murmur2_many(keys)]


@lru_cache(maxsize=64)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def _murmur2_same_length(keys: list[bytes], length: int) -> npt.NDArray[np.uint32]:
    # One row per key; the loop runs over the words of a key, once for all keys at a time.
    table = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    whole = length & ~3
    words = np.ascontiguousarray(table[:, :whole]).view("<u4").astype(np.uint32, copy=False)
    mix = np.uint32(MIX)
    h = np.full(len(keys), SEED ^ length, dtype=np.uint32)
    for column in words.T:
        k = column * mix
        k ^= k >> 24
        k *= mix
        h *= mix
        h ^= k
    if length > whole:
        tail = np.zeros(len(keys), dtype=np.uint32)
        for shift, column in enumerate(table[:, whole:].T):
            tail |= column.astype(np.uint32) << (8 * shift)
        h ^= tail
        h *= mix
    h ^= h >> 13
    h *= mix
    h ^= h >> 15
    return h
