"""What a bus refuses, and what a refused record never costs the records after it.

A record whose timestamp the broker would refuse is refused before anything of its batch is
sent, on every bus. On Kafka, a record the broker refuses anyway (a keyless record for a
compacted topic) fails alone: kafka-python leaves its producer failed for every later record,
and the bus puts that producer aside (found on a service whose every publish got 503 after one
event dated 2099). A header name that is not UTF-8 is read as the Java client reads it, and a
record the reader cannot parse is passed over with a stand-in message that says why, instead
of failing every poll for good.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest
from kafka.admin import NewTopic

from meander.bus import Bus, Record, TopicPartition
from meander.bus.base import unreadable
from meander.exceptions import BusError, InvalidTimestamp
from tests.meander.bus.test_contract import drain

Topic = Callable[..., str]
HOUR_MS = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.mark.parametrize("when", ["2 h ahead", "before 1970"])
def test_a_timestamp_out_of_the_window_is_refused_before_anything_is_sent(
    bus: Bus, topic: Topic, when: str
) -> None:
    name = topic(1)
    good = Record(name, b"kept")
    stamp = now_ms() + 2 * HOUR_MS if when == "2 h ahead" else -5
    bad = Record(name, b"refused", timestamp_ms=stamp)

    with pytest.raises(InvalidTimestamp, match="record 1 for"):
        bus.publish([good, bad])

    assert bus.publish([good])[0].offset == 0  # nothing of the refused batch was stored
    assert bus.publish([Record(name, b"soon", timestamp_ms=now_ms() + 60_000)])[0].offset == 1


@pytest.mark.integration
def test_a_record_the_broker_refuses_does_not_fail_the_next_ones(kafka_bootstrap: str) -> None:
    from meander.bus.kafka import KafkaBus

    with KafkaBus(kafka_bootstrap) as bus:
        compacted, plain = f"test.compacted.{uuid.uuid4().hex[:8]}", f"test.{uuid.uuid4().hex[:8]}"
        bus.create_topics({plain: 1})
        bus._admin.create_topics(
            [NewTopic(compacted, 1, 1, topic_configs={"cleanup.policy": "compact"})]
        )

        with pytest.raises(BusError, match="InvalidRecordError"):
            bus.publish([Record(compacted, b"no key")])  # the broker refuses it

        assert bus.problem() is None
        for round_ in range(3):  # before the fix: every one failed with the same error
            assert bus.publish([Record(plain, f"{round_}".encode())])[0].offset == round_


@pytest.mark.integration
def test_a_timestamp_past_the_brokers_limit_with_a_wide_window_fails_alone(
    kafka_bootstrap: str,
) -> None:
    from meander.bus.kafka import KafkaBus

    # A window wider than the broker's own (1 h by default): the broker refuses the record.
    with KafkaBus(kafka_bootstrap, max_ahead_seconds=3 * 3600) as bus:
        name = f"test.{uuid.uuid4().hex[:8]}"
        bus.create_topics({name: 1})
        with pytest.raises(BusError, match="InvalidTimestampError"):
            bus.publish([Record(name, b"2 h ahead", timestamp_ms=now_ms() + 2 * HOUR_MS)])
        assert bus.publish([Record(name, b"now")])[0].offset == 0


@pytest.mark.integration
def test_a_header_name_not_in_utf8_and_a_null_header_value_are_read(kafka_bootstrap: str) -> None:
    from meander.bus.kafka import KafkaBus

    with KafkaBus(kafka_bootstrap) as bus:
        name = f"test.{uuid.uuid4().hex[:8]}"
        bus.create_topics({name: 1})
        # kcat writes what the Java client reads: a header name that is not UTF-8 (kafka-python
        # 3.0 raised on it at every poll, for good), and a header with a null value.
        kcat = ["kcat", "-P", "-b", kafka_bootstrap, "-t", name]
        subprocess.run([*kcat, "-H", "k\udcff=1"], input=b"bad name", check=True)
        subprocess.run([*kcat, "-H", "ce_id"], input=b"null header", check=True)
        with bus.subscribe([name], f"group-{uuid.uuid4().hex[:8]}") as reader:
            got = drain(reader, 2)

    assert [m.value for m in got] == [b"bad name", b"null header"]
    assert got[0].headers == (("k\ufffd", b"1"),)
    assert got[1].headers == (("ce_id", None),)


@pytest.mark.integration
def test_a_record_the_reader_cannot_parse_is_passed_over_with_its_reason(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafka.errors import CorruptRecordError

    from meander.bus import kafka_records
    from meander.bus.kafka import KafkaBus

    read_name = kafka_records._name

    def refusing(raw: bytes) -> str:  # a stand-in for a corrupt record: a broker never has one
        if raw == b"corrupt":
            raise CorruptRecordError("a record made unreadable by the test")
        return read_name(raw)

    monkeypatch.setattr(kafka_records, "_name", refusing)
    with KafkaBus(kafka_bootstrap) as bus:
        name = f"test.{uuid.uuid4().hex[:8]}"
        bus.create_topics({name: 1})
        bus.publish([Record(name, b"before")])
        bus.publish([Record(name, b"bad", headers=(("corrupt", b"1"),))])
        bus.publish([Record(name, b"after")])
        with bus.subscribe([name], f"group-{uuid.uuid4().hex[:8]}") as reader:
            got = drain(reader, 3)
            reader.commit()
            assert reader.committed(TopicPartition(name, 0)) == 3

    assert [m.offset for m in got] == [0, 1, 2]
    assert [m.value for m in got] == [b"before", None, b"after"]
    assert "a record made unreadable by the test" in (unreadable(got[1]) or "")
