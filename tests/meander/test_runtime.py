"""A runtime of its own in the process: the demo's and the backtest's backends."""

from __future__ import annotations

import pytest

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, Record, TopicPartition
from meander.config import Settings
from meander.exceptions import ConfigError, MessageTooLarge
from meander.runtime import Runtime, check_state_topic


def test_an_embedded_runtime_keeps_checkpoints_larger_than_an_event() -> None:
    settings = Settings(max_event_bytes=10_000, state_max_bytes=2_000_000)
    with Runtime.embedded(settings) as runtime:
        # A kNN champion's checkpoint went over 1,000,000 bytes in the adaptation benchmark.
        runtime.changelog.set("checkpoint", b"x" * 1_500_000)
        runtime.changelog.flush(timeout=5)
        assert runtime.changelog.pending == 0
        where = TopicPartition(topics.STATE, 0)
        with runtime.bus.assign([where]) as reader:
            assert reader.end_offsets([where]) == {where: 1}
        with pytest.raises(MessageTooLarge):
            runtime.bus.publish([Record(topics.STATE, b"x" * 2_000_001)])
        with pytest.raises(MessageTooLarge):
            runtime.bus.publish([Record(topics.ALERTS, b"x" * 10_001)])


def test_each_embedded_runtime_starts_from_nothing() -> None:
    settings = Settings()
    with Runtime.embedded(settings) as first:
        first.store.set("seen", b"1")
        first.bus.publish([Record(topics.ALERTS, b"an alert")])
        with Runtime.embedded(settings) as second:
            assert second.store.get("seen") is None
            where = TopicPartition(topics.ALERTS, 0)
            with second.bus.assign([where]) as reader:
                assert reader.end_offsets([where]) == {where: 0}


@pytest.mark.parametrize(
    ("made", "said"),
    [
        ({"cleanup.policy": "delete"}, "cleanup.policy=delete deletes records a store that lost"),
        ({"cleanup.policy": "compact,delete"}, "cleanup.policy=compact,delete deletes records"),
        ({"max.message.bytes": "1048588"}, "max.message.bytes=1048588 refuses models and"),
    ],
)
def test_a_state_topic_that_would_lose_what_redis_is_restored_from_is_refused(
    made: dict[str, str], said: str
) -> None:
    # A meander.state made by hand (automatic creation off) has the broker's defaults: delete
    # after 7 days and 1 MB records. Nothing checked it: a store restored after a Redis loss
    # missed what Kafka had deleted, and checkpoints over 1 MB were refused.
    settings = Settings(state_max_bytes=2**26)
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({topics.STATE: 1}, {topics.STATE: made})
    with pytest.raises(
        ConfigError,
        match=f"topic meander.state exists with settings meander cannot restore from: {said}",
    ):
        check_state_topic(bus, settings)
    good = MemoryBus(MemoryBroker())
    good.create_topics({topics.STATE: 1}, topics.configs(2**26))
    check_state_topic(good, settings)
