"""The learner's readers of events and predictions hand over what lies before the ends asked
for, and nothing past them."""

from __future__ import annotations

from meander.bus import MemoryBroker, MemoryBus, Record, TopicPartition
from meander.consumers.learner.learner_inputs import Tail


def test_a_tail_keeps_what_it_read_past_the_ends_for_the_next_read() -> None:
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"t": 2})
    first, second = TopicPartition("t", 0), TopicPartition("t", 1)
    bus.publish([Record("t", f"a{i}".encode(), partition=0) for i in range(4)])
    bus.publish([Record("t", f"b{i}".encode(), partition=1) for i in range(2)])
    tail = Tail(bus, "t", {})

    read = tail.read_to_end({first: 2, second: 1})

    assert sorted(m.value for m in read) == [b"a0", b"a1", b"b0"]
    assert tail.offsets() == {first: 2, second: 1}  # what a checkpoint stores
    bus.publish([Record("t", b"a4", partition=0)])
    assert sorted(m.value for m in tail.read_to_end()) == [b"a2", b"a3", b"a4", b"b1"]
    assert tail.offsets() == {first: 5, second: 2}
    resumed = Tail(bus, "t", {first: 2, second: 1})  # from the checkpoint above
    assert sorted(m.value for m in resumed.read_to_end()) == [b"a2", b"a3", b"a4", b"b1"]
