"""What Redis holds that matters is rebuilt from the changelog after Redis loses its data, on
every backend: the embedded pair, and a real Kafka broker with a real Redis server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis

from meander import keys, topics
from meander.bus import Bus, MemoryBroker, MemoryBus, Record, Sending, TopicPartition
from meander.exceptions import BusError, BusUnavailable, StoreNotReady
from meander.models.registry import Registry
from meander.models.signing import Signer
from meander.models.specs import build_model
from meander.store import memory_store
from meander.store.changelog import Changelog, restore
from meander.store.guard import StoreGuard
from meander.store.lease import Lease

SPEC = "tree.HoeffdingTreeClassifier"


@dataclass
class Backends:
    bus: Bus
    store: redis.Redis[bytes]
    topic: str

    def changelog(self) -> Changelog:
        return Changelog(self.bus, self.topic)

    def guard(self) -> StoreGuard:
        return StoreGuard(self.store, self.bus, self.topic)

    def lose_everything(self) -> None:
        """What a Redis restart without its data (no AOF, or a new volume) leaves."""
        self.store.flushdb()


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def backends(request: pytest.FixtureRequest) -> Iterator[Backends]:
    topic = f"test.state.{uuid.uuid4().hex[:10]}"
    limits = {topic: 8 * 2**20}
    configs = topics.configs(8 * 2**20)[topics.STATE]
    if request.param == "memory":
        bus: Bus = MemoryBus(MemoryBroker(), topic_limits=limits)
        store = memory_store(fakeredis.FakeServer())
    else:
        from meander.bus.kafka import KafkaBus

        bus = KafkaBus(request.getfixturevalue("kafka_bootstrap"), topic_limits=limits)
        # A database of its own: flushing it leaves the other tests' data alone.
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/7"
        store = redis.Redis.from_url(url)
        store.flushdb()
    bus.create_topics({topic: 1}, {topic: configs})
    try:
        yield Backends(bus, store, topic)
    finally:
        store.flushdb()
        store.close()
        bus.close()


def contents(store: redis.Redis[bytes], pattern: str) -> dict[bytes, Any]:
    """Every key matching ``pattern`` with its value, whatever its type."""
    found: dict[bytes, Any] = {}
    for key in store.scan_iter(pattern):
        kind = store.type(key)
        if kind == b"string":
            found[key] = store.get(key)
        elif kind == b"hash":
            found[key] = store.hgetall(key)
        elif kind == b"zset":
            found[key] = store.zrange(key, 0, -1, withscores=True)
    return found


def test_a_registry_is_restored_whole_after_redis_lost_it(backends: Backends) -> None:
    backends.guard().ensure()
    registry = Registry(
        backends.store,
        "s",
        Signer(b"sixteen-byte-key"),
        changelog=backends.changelog(),
        guard=backends.guard(),
    )
    first = registry.register(build_model(SPEC), spec=SPEC).version
    registry.promote(first, reason="first")
    registry.save(first, build_model(SPEC))
    # A model above Kafka's default 1 MB record limit.
    large = registry.register({"weights": os.urandom(3 * 2**20)}, spec=SPEC, parent=first)
    challenger = registry.register(build_model(SPEC), spec=SPEC, parent=first).version
    registry.add_challenger(challenger)
    registry.add_challenger(large.version)
    registry.reject(large.version, "lost")
    registry.promote(challenger, reason="won")
    registry._log.changelog.flush()  # type: ignore[union-attr]
    before = contents(backends.store, "meander:registry:s:*")

    backends.lose_everything()
    assert registry.heads().champion is None
    assert backends.guard().ensure()

    assert contents(backends.store, "meander:registry:s:*") == before
    assert registry.load(large.version)[0]["weights"] == registry.load(large.version)[0]["weights"]
    assert registry.register(build_model(SPEC), spec=SPEC).version == 4  # never a number twice


def test_the_last_epoch_of_a_key_wins_over_a_late_write_of_an_earlier_one(
    backends: Backends,
) -> None:
    log = backends.changelog()
    log.set("checkpoint", b"from epoch 2", order=2)
    log.set("checkpoint", b"from epoch 1, late", order=1)  # a learner that lost its lease
    log.set("other", b"first")
    log.set("other", b"second")
    log.flush()

    assert restore(backends.store, backends.bus, backends.topic) == 2

    assert backends.store.get("checkpoint") == b"from epoch 2"
    assert backends.store.get("other") == b"second"


def test_fields_members_whole_sets_and_deletions_are_restored(backends: Backends) -> None:
    log = backends.changelog()
    log.hset("hash", "a", b"1")
    log.hset("hash", "b", b"2")
    log.zadd("versions", "1", 1)
    log.zadd("versions", "2", 2)
    log.zset("challengers", {"3": 3.0, "4": 4.0})
    log.zset("challengers", {"4": 4.0})
    log.set("watch", b"x")
    log.delete("watch")
    log.flush()
    backends.store.set("watch", b"stale")

    restore(backends.store, backends.bus, backends.topic)

    assert backends.store.hgetall("hash") == {b"a": b"1", b"b": b"2"}
    assert backends.store.zrange("versions", 0, -1) == [b"1", b"2"]
    assert backends.store.zrange("challengers", 0, -1) == [b"4"]
    assert backends.store.get("watch") is None


def test_lease_epochs_go_on_rising_after_a_restore(backends: Backends) -> None:
    guard = backends.guard()
    guard.ensure()

    def lease() -> Lease:
        return Lease(
            backends.store, "lease", 10.0, ready=guard.check, changelog=backends.changelog()
        )

    first = lease()
    assert first.hold()
    first.release()
    second = lease()
    assert second.hold() and second.epoch == 2
    assert second.changelog is not None
    second.changelog.flush()
    second.release()

    backends.lose_everything()
    third = lease()
    assert third.hold()  # restores the store first

    assert third.epoch > second.epoch
    third.release()


def test_writes_wait_while_another_process_restores(backends: Backends) -> None:
    guard = backends.guard()
    backends.store.set(keys.STORE_RESTORING, b"another process", px=10_000)
    registry = Registry(backends.store, "s", Signer(b"sixteen-byte-key"), guard=guard)

    assert not guard.ensure()
    with pytest.raises(StoreNotReady, match="another process is restoring it"):
        registry.register(build_model(SPEC), spec=SPEC)
    assert backends.store.get(keys.registry("s") + "counter") in (None, b"1")

    backends.store.delete(keys.STORE_RESTORING)
    assert registry.register(build_model(SPEC), spec=SPEC).version >= 1


class DownBus(MemoryBus):
    """An embedded bus whose broker can be down."""

    down = False

    def send(self, records: Any) -> Sending:
        if self.down:
            raise BusUnavailable("the broker is down")
        return super().send(records)

    def publish(self, records: Any, timeout: float | None = None) -> Any:
        if self.down:
            raise BusUnavailable("the broker is down")
        return super().publish(records, timeout)


def test_what_kafka_did_not_take_is_sent_again_once_it_is_back() -> None:
    bus = DownBus(MemoryBroker())
    bus.create_topics({"state": 1})
    log = Changelog(bus, "state")
    bus.down = True

    log.set("champion", b"2")
    log.set("champion", b"3")  # only the latest value of a key is worth sending

    assert log.pending == 1
    bus.down = False
    assert log.settle() == 0
    store = memory_store(fakeredis.FakeServer())
    restore(store, bus, "state")
    assert store.get("champion") == b"3"
    assert [m.value for m in bus.broker.read(TopicPartition("state", 0), 0, 10)] == [b"3"]


def test_a_record_larger_than_the_topic_takes_is_refused_with_the_setting_to_raise() -> None:
    bus = MemoryBus(MemoryBroker(), topic_limits={"state": 100})
    bus.create_topics({"state": 1})

    with pytest.raises(Exception, match="raise state_max_bytes"):
        bus.publish([Record("state", b"x" * 200)])


def test_a_record_too_large_waits_for_a_newer_value_without_holding_back_other_keys() -> None:
    bus = MemoryBus(MemoryBroker(), topic_limits={"state": 100})
    bus.create_topics({"state": 1})
    log = Changelog(bus, "state")

    log.set("checkpoint", b"x" * 200)  # a checkpoint over the limit: Kafka never takes it
    log.set("champion", b"2")
    log.set("version:2", b"meta")

    assert log.settle() == 1, "the other keys reached Kafka"
    store = memory_store(fakeredis.FakeServer())
    restore(store, bus, "state")
    assert (store.get("champion"), store.get("version:2")) == (b"2", b"meta")
    assert store.get("checkpoint") is None
    with pytest.raises(BusError, match="1 changelog record"):
        log.flush(timeout=0.05)  # a shutdown says that one never made it

    log.set("checkpoint", b"y" * 50)  # the next one fits
    assert log.settle() == 0
    restore(store, bus, "state")
    assert store.get("checkpoint") == b"y" * 50
