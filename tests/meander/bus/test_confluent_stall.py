"""A confluent-kafka group member that stopped rejoining its group is replaced, and reads on.

A notifier on confluent-kafka (a static member) whose broker was restarted again and again
logged its session timing out ("revoking assignment and rejoining group") after the 9th restart
and then nothing: its group stayed empty, its polls returned nothing and no error, and none of
the alerts published after it were delivered (librdkafka issue 3437). That stall comes after
many restarts, not on demand; the integration test puts a member, on a real broker, in the
state it leaves: its client unsubscribed behind the bus's back, so it holds no partitions, the
group lets it go, and its polls return nothing and no error.
"""

from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client import REGISTRY

from meander.bus import Record
from meander.bus.confluent_stall import Membership, Stall

confluent_kafka = pytest.importorskip("confluent_kafka")

SESSION_MS = 6_000  # the broker's smallest by default: the stall is replaced after twice that


def replaced(group: str) -> float:
    labels = {"group": group, "cause": "stalled"}
    return REGISTRY.get_sample_value("meander_kafka_consumers_replaced_total", labels) or 0.0


def read_until(consumer: object, value: bytes, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value in [m.value for m in consumer.consume(timeout=0.5)]:  # type: ignore[attr-defined]
            return True
    return False


@pytest.mark.integration
def test_a_static_member_its_group_let_go_is_replaced_and_reads_on(kafka_bootstrap: str) -> None:
    from meander.bus.confluent import ConfluentBus

    bus = ConfluentBus(
        kafka_bootstrap,
        timeout=10,
        instance_id="stall",
        consumer_options={"session.timeout.ms": SESSION_MS},
    )
    topic, group = f"test.{uuid.uuid4().hex[:12]}", f"group-{uuid.uuid4().hex[:12]}"
    with bus:
        bus.create_topics({topic: 1})
        bus.publish([Record(topic, b"before")])
        consumer = bus.subscribe([topic], group)
        assert read_until(consumer, b"before", 30)
        consumer.commit()
        consumer._consumer.unsubscribe()  # type: ignore[attr-defined]
        bus.publish([Record(topic, b"after")])
        stalled = time.monotonic()

        assert read_until(consumer, b"after", 4 * SESSION_MS / 1000)
        assert time.monotonic() - stalled >= 2 * SESSION_MS / 1000
        assert replaced(group) == 1
        consumer.close()


class Idle:
    """librdkafka's consumer as the watch sees it: no partitions."""

    def assignment(self) -> list[object]:
        return []

    def memberid(self) -> str:
        return "member-1"


@pytest.mark.parametrize(
    ("membership", "stalled"),
    [
        (Membership(True, frozenset()), True),  # the group is empty
        (Membership(True, frozenset({"member-2"})), True),  # others read, it is not listed
        (Membership(True, frozenset({"member-1"})), False),  # listed: more members than partitions
        (Membership(False, frozenset()), False),  # a rebalance under way: wait for it
        (None, False),  # the broker does not answer: an outage, ridden out
    ],
)
def test_only_a_member_its_settled_group_does_not_list_is_stalled(
    membership: Membership | None, stalled: bool
) -> None:
    now = [0.0]
    asked: list[float] = []

    def describe() -> Membership | None:
        asked.append(now[0])
        return membership

    stall = Stall(describe, None, after=20.0, clock=lambda: now[0])
    found = []
    for now[0] in (0.0, 10.0, 19.9, 20.0, 25.0, 30.0):
        found.append(stall.stalled(Idle()))
    assert found == [False, False, False, stalled, False, stalled]
    assert asked == [20.0, 30.0]  # from two session timeouts on, once every one
