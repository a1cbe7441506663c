"""The announcement records on real Redis: WATCH and MULTI/EXEC, with notifiers racing."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import pytest
import redis

from meander import keys
from meander.consumers.notifier.announced import Announcements
from meander.consumers.notifier.webhooks import Webhook
from meander.store.redis import redis_store


@dataclass(frozen=True)
class Event:
    event_id: str


@pytest.mark.integration
def test_notifiers_racing_over_the_same_events_announce_each_on_redis_once(redis_url: str) -> None:
    store = redis_store(redis_url)
    events = [Event(f"race-{uuid.uuid4().hex}") for _ in range(40)]
    hook = Webhook("https://hooks.example/in")

    def publish(pipe: redis.client.Pipeline[bytes], event: Event) -> None:
        pipe.publish(f"test:{event.event_id}", b"announced")  # kept only if EXEC succeeds

    results: list[tuple[int, list[tuple[Webhook, Event]]]] = []

    def notifier(instance: str) -> None:
        announcements = Announcements(store, instance=instance, remember=60)
        for start in range(0, len(events), 5):  # batches, as a notifier reads them
            results.append(
                announcements.announce(events[start : start + 5], lambda e: [hook], publish)
            )

    threads = [threading.Thread(target=notifier, args=(f"n{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sum(count for count, _ in results) == len(events)  # each announced once ...
    recorded = [store.hget(keys.announced(e.event_id), "redis") for e in events]
    assert all(recorded)  # ... and recorded
    delivered = {event.event_id for _, deliveries in results for _, event in deliveries}
    assert delivered == {event.event_id for event in events}  # each queued by someone
    assert 0 < store.ttl(keys.announced(events[0].event_id)) <= 60
    store.delete(*(keys.announced(e.event_id) for e in events))
    store.close()
