"""A lease is held by one process at a time, renewed while it lives, lapses when it dies, and
fences every write of a holder that lost it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import fakeredis
import pytest
import redis

from meander.exceptions import LeaseLost, MeanderError
from meander.store import memory_store, redis_store
from meander.store.lease import Lease


@pytest.fixture
def store() -> redis.Redis[bytes]:
    return memory_store(fakeredis.FakeServer())


@pytest.fixture
def leases(store: redis.Redis[bytes]) -> Any:
    """``leases(seconds)``: a new lease on the key "lease"; all are released at the end."""
    made: list[Lease] = []

    def make(seconds: float = 10.0, **options: Any) -> Lease:
        made.append(Lease(store, "lease", seconds, **options))
        return made[-1]

    yield make
    for lease in made:
        lease.release()


def test_one_holder_at_a_time(store: redis.Redis[bytes], leases: Any) -> None:
    first, second = leases(), leases()

    assert first.hold()
    assert not second.hold()
    assert first.hold()  # holding again is no conflict
    assert (first.held, second.held) == (True, False)
    assert store.get("lease") == first.token == b"1:" + first.token.split(b":")[1]


def test_leases_on_different_keys_do_not_conflict(store: redis.Redis[bytes]) -> None:
    a, b = Lease(store, "a", 10.0), Lease(store, "b", 10.0)
    assert a.hold() and b.hold()
    a.release()
    b.release()


def test_each_takeover_raises_the_epoch(leases: Any) -> None:
    first, second = leases(), leases()
    first.hold()

    first.release()

    assert not first.held
    assert second.hold() and second.epoch == first.epoch + 1


def test_a_dead_holders_claim_lapses_and_a_standby_takes_over(
    store: redis.Redis[bytes], leases: Any
) -> None:
    store.set("lease", b"4:dead-process", px=300)  # what a killed holder leaves behind
    standby = leases()

    assert not standby.hold()
    time.sleep(0.35)

    assert standby.hold()


def test_the_holder_renews_by_itself_beyond_the_lease_life(leases: Any) -> None:
    holder, rival = leases(0.3), leases(0.3)
    holder.hold()

    time.sleep(1.0)  # no call at all meanwhile: a long step

    assert holder.held and not rival.hold()


def test_a_write_that_outlasts_renewals_is_not_aborted_by_them(
    store: redis.Redis[bytes], leases: Any
) -> None:
    holder = leases(0.2)  # renewed every 50 ms
    holder.hold()

    def slow(pipe: Any) -> None:  # a write whose round trips take longer than that (a far Redis)
        time.sleep(0.3)
        pipe.set("state", b"written")

    holder.fenced(slow)  # each renewal used to abort it: LeaseLost after every attempt

    assert store.get("state") == b"written" and holder.held


@pytest.mark.integration
def test_on_a_real_redis_a_write_that_outlasts_renewals_is_not_aborted_by_them(
    redis_url: str,
) -> None:
    store = redis_store(redis_url)
    holder = Lease(store, f"lease-{uuid.uuid4().hex}", 0.2)
    holder.hold()

    def slow(pipe: Any) -> None:
        time.sleep(0.3)
        pipe.set(holder.key + ":state", b"written")

    try:
        holder.fenced(slow)
        assert store.get(holder.key + ":state") == b"written" and holder.held
    finally:
        holder.release()
        store.close()


def test_a_takeover_during_a_write_aborts_it(store: redis.Redis[bytes], leases: Any) -> None:
    first, second = leases(0.3), leases(0.3)
    first.hold()

    def taken_meanwhile(pipe: Any) -> None:  # the holder stalls mid-write and loses its claim
        first._end_beat()
        store.delete("lease")
        assert second.hold()
        pipe.set("state", b"late")

    with pytest.raises(LeaseLost, match=r"held by epoch 2, not by this holder \(epoch 1\)"):
        first.fenced(taken_meanwhile)

    assert store.get("state") is None


def test_a_holder_that_lost_the_lease_is_fenced_off(store: redis.Redis[bytes], leases: Any) -> None:
    first, second = leases(0.3), leases(0.3)
    first.hold()
    first.fenced(lambda pipe: pipe.set("state", b"first"))
    store.delete("lease")  # its renewals did not get through in time: it lapsed
    assert second.hold()

    with pytest.raises(LeaseLost, match=f"held by epoch {second.epoch}, not by this holder"):
        first.fenced(lambda pipe: pipe.set("state", b"late"))

    assert store.get("state") == b"first"
    assert not first.held and not first.hold()
    second.fenced(lambda pipe: pipe.set("state", b"second"))
    assert store.get("state") == b"second"


def test_release_by_a_holder_that_lost_the_lease_leaves_the_new_holder_alone(
    store: redis.Redis[bytes], leases: Any
) -> None:
    first, second = leases(), leases()
    first.hold()
    store.delete("lease")
    second.hold()

    first.release()

    assert store.get("lease") == second.token


def test_the_lease_is_not_taken_while_its_guard_refuses(leases: Any) -> None:
    class NotReady(MeanderError):
        pass

    def refuse(pipe: Any) -> None:
        raise NotReady("the store is being restored")

    with pytest.raises(NotReady):
        leases(ready=refuse).hold()
    assert leases().hold()


def test_a_process_started_again_under_its_name_takes_its_predecessors_claim_at_once(
    store: redis.Redis[bytes], leases: Any
) -> None:
    dead = leases(holder="learner")
    assert dead.hold()
    dead._end_beat()  # SIGKILLed: no more renewals, but its claim has most of its life ahead

    assert not leases().hold()  # a process of no name waits for the claim to lapse
    assert not leases(holder="other").hold()  # as does one of another name
    again = leases(holder="learner")
    assert again.hold() and again.epoch == dead.epoch + 1
    assert store.get("lease") == again.token
    with pytest.raises(LeaseLost):  # had the predecessor lived on, it is fenced off
        dead.fenced(lambda pipe: pipe.set("owned", b"late"))
