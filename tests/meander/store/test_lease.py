"""A lease is held by one process at a time and lapses when its holder stops renewing it."""

from __future__ import annotations

import time

import fakeredis
import pytest
import redis

from meander.store import memory_store
from meander.store.lease import Lease


@pytest.fixture
def store() -> redis.Redis[bytes]:
    return memory_store(fakeredis.FakeServer())


def test_one_holder_at_a_time(store: redis.Redis[bytes]) -> None:
    first, second = Lease(store, "lease", 10.0), Lease(store, "lease", 10.0)

    assert first.hold()
    assert not second.hold()
    assert first.hold()  # holding again is renewing, not a conflict
    assert (first.held, second.held) == (True, False)
    assert store.get("lease") == first.token


def test_leases_on_different_keys_do_not_conflict(store: redis.Redis[bytes]) -> None:
    assert Lease(store, "a", 10.0).hold()
    assert Lease(store, "b", 10.0).hold()


def test_release_lets_another_holder_in(store: redis.Redis[bytes]) -> None:
    first, second = Lease(store, "lease", 10.0), Lease(store, "lease", 10.0)
    first.hold()

    first.release()

    assert not first.held
    assert second.hold()


def test_release_by_a_lapsed_holder_leaves_the_new_holder_alone(
    store: redis.Redis[bytes],
) -> None:
    first, second = Lease(store, "lease", 0.05), Lease(store, "lease", 10.0)
    first.hold()
    time.sleep(0.1)
    assert second.hold()

    first.release()

    assert store.get("lease") == second.token
    assert not Lease(store, "lease", 10.0).hold()


def test_an_expired_lease_lets_a_second_holder_in_and_the_first_learns_it_lost(
    store: redis.Redis[bytes],
) -> None:
    first, second = Lease(store, "lease", 0.05), Lease(store, "lease", 0.05)
    assert first.hold()
    assert not second.hold()

    time.sleep(0.1)  # the first holder stopped renewing: it died, or hung

    assert second.hold()
    assert not first.hold()


def test_renewing_keeps_the_lease_beyond_its_first_expiry(store: redis.Redis[bytes]) -> None:
    holder, rival = Lease(store, "lease", 0.6), Lease(store, "lease", 0.6)
    holder.hold()
    for _ in range(9):  # 0.9 s in all, longer than the lease's life
        time.sleep(0.1)
        assert holder.hold()
        assert not rival.hold()
