"""The store contract: what meander relies on from Redis, on real Redis and the embedded one."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from meander.exceptions import StoreUnavailable
from meander.store import redis_store

Store = redis.Redis


@pytest.fixture
def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_bytes_round_trip(store: Store, key: str) -> None:
    blob = bytes(range(256)) * 100
    store.set(key, blob)
    assert store.get(key) == blob


def test_transaction_writes_all_or_nothing(store: Store, key: str) -> None:
    with store.pipeline(transaction=True) as pipe:
        pipe.set(f"{key}:model", b"m").hset(f"{key}:offsets", mapping={"0": "10", "1": "12"})
        pipe.execute()
    assert store.get(f"{key}:model") == b"m"
    assert store.hgetall(f"{key}:offsets") == {b"0": b"10", b"1": b"12"}


def test_watch_refuses_a_write_after_a_concurrent_change(store: Store, key: str) -> None:
    store.set(key, b"1")
    with store.pipeline(transaction=True) as pipe:
        pipe.watch(key)
        store.set(key, b"changed elsewhere")
        pipe.multi()
        pipe.set(key, b"stale write")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert store.get(key) == b"changed elsewhere"


def test_expiry(store: Store, key: str) -> None:
    store.set(key, b"x", px=200)
    assert 0 < store.pttl(key) <= 200
    time.sleep(0.4)
    assert store.get(key) is None


def test_sorted_sets_and_streams(store: Store, key: str) -> None:
    store.zadd(f"{key}:versions", {"v1": 1, "v3": 3, "v2": 2})
    assert store.zrange(f"{key}:versions", 0, -1) == [b"v1", b"v2", b"v3"]
    store.xadd(f"{key}:log", {"action": "promoted"})
    store.xadd(f"{key}:log", {"action": "rolled_back"})
    assert [e[b"action"] for _, e in store.xrange(f"{key}:log")] == [b"promoted", b"rolled_back"]


def test_pubsub_delivers_to_subscribers(store: Store, key: str) -> None:
    listener = store.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(key)
    store.publish(key, b"model promoted")
    deadline, message = time.monotonic() + 5, None
    while message is None and time.monotonic() < deadline:
        message = listener.get_message(timeout=0.2)
    listener.close()
    assert message is not None and message["data"] == b"model promoted"


def test_unreachable_redis_fails_fast_and_says_so() -> None:
    started = time.monotonic()
    with pytest.raises(
        StoreUnavailable, match=r"127\.0\.0\.1:1/0 did not answer.*MEANDER_REDIS_URL"
    ):
        redis_store("redis://127.0.0.1:1/0", timeout=1)
    assert time.monotonic() - started < 10
