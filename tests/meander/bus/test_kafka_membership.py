"""A process with an ``instance_id`` is a static member of its groups: SIGKILLed and restarted,
it reads again at once, where a new member would wait for the dead one's session (10 s) to
expire before the group gave it partitions."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest

from meander.bus import Record
from meander.bus.kafka import KafkaBus

pytestmark = pytest.mark.integration

MEMBER = """
import sys
from meander.bus.kafka import KafkaBus
bus = KafkaBus(sys.argv[1], instance_id="predictor-1")
consumer = bus.subscribe([sys.argv[2]], sys.argv[3])
while not consumer.consume(100, 0.2):
    pass
print("read", flush=True)
while True:
    consumer.consume(100, 0.2)
"""


def test_a_killed_static_member_reads_again_at_once_when_restarted(kafka_bootstrap: str) -> None:
    topic, group = f"static.{uuid.uuid4().hex[:8]}", f"static-{uuid.uuid4().hex[:8]}"
    with KafkaBus(kafka_bootstrap, instance_id="predictor-1") as bus:
        bus.create_topics({topic: 3})
        bus.publish([Record(topic, b"x", partition=p) for p in range(3)])
        member = subprocess.Popen(
            [sys.executable, "-c", MEMBER, kafka_bootstrap, topic, group],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert member.stdout is not None and member.stdout.readline() == "read\n"
        finally:
            member.send_signal(signal.SIGKILL)
            member.wait(30)
            if member.stdout is not None:
                member.stdout.close()

        started = time.monotonic()
        restarted = bus.subscribe([topic], group)  # the same instance, restarted
        try:
            while not restarted.consume(100, 0.2):
                assert time.monotonic() - started < 30, "no partition in 30 s"
        finally:
            restarted.close()

    assert time.monotonic() - started < 5.0  # the dead member's session lasts 10 s
