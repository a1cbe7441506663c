"""Live feed readers on the embedded bus: cursors, resuming, slow clients, clients leaving."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import pytest

from meander.bus import MemoryBroker, MemoryBus, Record
from meander.events import Alert, Envelope, encode
from meander.services.live import (
    CursorError,
    Delivery,
    Ended,
    LiveFeed,
    format_cursor,
    parse_cursor,
)

TOPIC = "meander.alerts"
WAIT = 30.0  # generous: only a broken reader ever waits this long


def render(envelope: Envelope) -> dict[str, Any] | None:
    return {"id": envelope.id}


def bus_with(partitions: int = 3) -> MemoryBus:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({TOPIC: partitions})
    return bus


def alert(event_id: str, partition: int) -> Record:
    record = encode(
        TOPIC,
        Alert(kind="data_drift", stream="s", severity="info", statistic="psi", value=1.0),
        source="/test",
        event_id=event_id,
    )
    return Record(record.topic, record.value, record.key, record.headers, partition)


def publish(bus: MemoryBus, *placed: tuple[str, int]) -> None:
    bus.publish([alert(event_id, partition) for event_id, partition in placed])


async def take(feed: LiveFeed, count: int) -> list[Delivery | Ended]:
    """The first ``count`` items, then the client leaves."""
    items: list[Delivery | Ended] = []
    async with aclosing(feed.deliveries()) as deliveries:
        async for item in deliveries:
            items.append(item)
            if len(items) == count or isinstance(item, Ended):
                break
    return items


def ids(items: list[Delivery | Ended]) -> list[str]:
    return [item.data["id"] for item in items if isinstance(item, Delivery)]


def test_a_cursor_reads_back_as_written() -> None:
    positions = {2: 30, 0: 15, 1: 7}
    assert format_cursor(positions) == "0:15,1:7,2:30"
    assert parse_cursor(format_cursor(positions)) == positions


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the cursor is empty"),
        ("0", "'0' is not partition:offset"),
        ("0:", "'0:' is not partition:offset"),
        ("a:1", "'a:1' is not partition:offset"),
        ("0:-1", "'0:-1' is not partition:offset"),
        ("0:1;1:2", "'0:1;1:2' is not partition:offset"),
        ("0:1,0:2", "names partition 0 twice"),
        ("0:1," * 3000, "longer than 8192 characters"),
    ],
)
def test_a_malformed_cursor_is_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(CursorError, match=re.escape(problem)):
        parse_cursor(text)


def test_a_new_feed_starts_at_the_end_of_every_partition() -> None:
    bus = bus_with()
    publish(bus, ("old-1", 0), ("old-2", 2), ("old-3", 2))
    feed = LiveFeed.open(bus, TOPIC, render)
    assert feed.start_cursor == "0:1,1:0,2:2"
    publish(bus, ("new", 1))
    [item] = asyncio.run(take(feed, 1))
    assert item == Delivery("0:1,1:1,2:2", {"id": "new"})
    assert feed.join(WAIT)


def test_a_cursor_names_only_partitions_the_topic_has() -> None:
    with pytest.raises(CursorError, match=r"names partition 3, but meander\.alerts has 3"):
        LiveFeed.open(bus_with(), TOPIC, render, after="0:0,3:0")


def test_resuming_from_any_cursor_repeats_nothing_and_loses_nothing() -> None:
    bus = bus_with()
    feed = LiveFeed.open(bus, TOPIC, render)
    placed = [(f"e{n}", n % 3) for n in range(12)]
    publish(bus, *placed)
    first = asyncio.run(take(feed, 12))
    assert sorted(ids(first)) == sorted(event_id for event_id, _ in placed)
    for cut in range(12):
        cursor = first[cut]
        assert isinstance(cursor, Delivery)
        resumed = LiveFeed.open(bus, TOPIC, render, after=cursor.cursor)
        rest = asyncio.run(take(resumed, 11 - cut)) if cut < 11 else []
        resumed.close()
        # Across partitions the order may differ; within each the offsets decide.
        assert sorted(ids(rest)) == sorted(ids(first[cut + 1 :]))


def test_a_cursor_past_the_end_waits_at_the_end_and_a_missing_partition_starts_at_zero() -> None:
    bus = bus_with()
    publish(bus, ("a", 0), ("b", 1))
    feed = LiveFeed.open(bus, TOPIC, render, after="0:99")
    assert feed.start_cursor == "0:1,1:0,2:0"
    assert ids(asyncio.run(take(feed, 1))) == ["b"]


def test_events_the_filter_leaves_out_and_undecodable_ones_still_move_the_cursor() -> None:
    bus = bus_with(1)
    feed = LiveFeed.open(
        bus, TOPIC, lambda envelope: None if envelope.id == "skip" else {"id": envelope.id}
    )
    publish(bus, ("skip", 0))
    bus.publish([Record(TOPIC, b"not a CloudEvent", partition=0)])
    publish(bus, ("kept", 0))
    assert asyncio.run(take(feed, 1)) == [Delivery("0:3", {"id": "kept"})]


def test_a_client_too_slow_gets_what_was_queued_then_the_reason() -> None:
    bus = bus_with(1)
    feed = LiveFeed.open(bus, TOPIC, render, capacity=2, stall_seconds=0.2)
    publish(bus, *[(f"e{n}", 0) for n in range(10)])

    async def read_one_then_stall() -> list[Delivery | Ended]:
        deliveries: AsyncGenerator[Delivery | Ended] = feed.deliveries()
        async with aclosing(deliveries):
            items = [await anext(deliveries)]
            # The client takes nothing more until the reader has given up on it.
            assert await asyncio.to_thread(feed.join, WAIT)
            items += [item async for item in deliveries]
        return items

    items = asyncio.run(read_one_then_stall())
    # What the client took at once (at most the queue's two), then a full queue of two.
    received = ids(items)
    assert received == [f"e{n}" for n in range(len(received))]
    assert 3 <= len(received) <= 4
    assert isinstance(items[-1], Ended)
    assert "read too slowly: 2 events waited more than 0.2s" in items[-1].reason


def test_the_reader_stops_and_releases_its_consumer_when_the_client_leaves() -> None:
    bus = bus_with(1)
    feed = LiveFeed.open(bus, TOPIC, render)
    publish(bus, ("e0", 0))
    asyncio.run(take(feed, 1))
    assert feed.join(WAIT)
    assert feed._consumer._closed  # type: ignore[attr-defined]


def test_a_feed_closed_before_it_was_read_releases_its_consumer() -> None:
    feed = LiveFeed.open(bus_with(1), TOPIC, render)
    feed.close()
    assert feed._consumer._closed  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="closed before it was read"):
        asyncio.run(take(feed, 1))
