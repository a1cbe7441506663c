"""Through a broker that stops answering, nothing is stored twice and nothing is lost.

These tests pause a broker of their own (SIGSTOP: connections stay open, nothing is answered,
as in a network partition or a long GC pause) while records are on their way, so that the bus's
acknowledgement time-outs fire; the session's broker is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from meander import topics
from meander.bus import Bus, Consumer, Message, Outbox, Record, TopicPartition
from meander.bus.confluent import ConfluentBus
from meander.bus.kafka import KafkaBus
from meander.exceptions import BusError, BusUnavailable
from meander.infra.kafka import LocalKafka
from meander.producers.synthetic import synthetic

if TYPE_CHECKING:
    from tests.integration.conftest import Child

pytestmark = pytest.mark.integration

MEANDER = str(Path(sys.executable).parent / "meander")


class Broker:
    """A broker of this module's own, started on first use, that can be paused."""

    def __init__(self, root: Path) -> None:
        self.kafka = LocalKafka(data_dir=root / "kafka")

    def started(self) -> LocalKafka:
        if not self.kafka.running:
            self.kafka.start(timeout=120)
        return self.kafka

    def pause(self, seconds: float) -> threading.Thread:
        """Stop the broker's process for ``seconds``, from now, in the background."""
        pid = self.kafka.pid
        assert pid is not None, "the broker is not running"
        os.kill(pid, signal.SIGSTOP)

        def resume() -> None:
            time.sleep(seconds)
            os.kill(pid, signal.SIGCONT)

        thread = threading.Thread(target=resume, daemon=True)
        thread.start()
        return thread


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    own = Broker(tmp_path_factory.mktemp("outage"))
    try:
        yield own
    finally:
        if own.kafka.pid is not None:
            os.kill(own.kafka.pid, signal.SIGCONT)  # a failed test may leave it paused
        own.kafka.stop()


def stored_on(bus: Bus, topic: str) -> Counter[tuple[bytes | None, bytes | None]]:
    """How many times each (key, value) is stored in ``topic``."""
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    found: Counter[tuple[bytes | None, bytes | None]] = Counter()
    with bus.assign(partitions) as reader:
        ends = reader.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while any(reader.position(p) < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            found.update((m.key, m.value) for m in reader.consume(5_000, 0.5))
    return found


def _created(kafka: LocalKafka, topics: dict[str, int]) -> None:
    """Create ``topics`` with the bus's usual time-out: the 2 s the tests give their own bus is
    for the pause, and a loaded machine's broker can take longer to show a new topic."""
    with KafkaBus(kafka.bootstrap) as bus:
        bus.create_topics(topics)


@pytest.mark.parametrize(
    "client", [KafkaBus, ConfluentBus], ids=["kafka-python", "confluent-kafka"]
)
def test_an_outbox_waits_through_a_pause_and_stores_each_record_once(
    broker: Broker, client: type[KafkaBus | ConfluentBus]
) -> None:
    kafka = broker.started()
    topic = f"outage.{os.urandom(5).hex()}"
    _created(kafka, {topic: 3})
    with client(kafka.bootstrap, timeout=2.0) as bus:
        outbox = Outbox(bus)
        timeouts = 0
        resumed: threading.Thread | None = None
        for batch in range(40):
            outbox.add([Record(topic, b"x", key=f"{batch}-{i}".encode()) for i in range(50)])
            if batch == 10:
                resumed = broker.pause(6.0)  # with records in flight, acknowledgements stop
            try:
                outbox.flush()
            except BusUnavailable:
                timeouts += 1  # what was handed over stays with the producer: wait again
            time.sleep(0.05)
        assert resumed is not None
        resumed.join()
        deadline = time.monotonic() + 60
        while outbox:
            assert time.monotonic() < deadline, "the outbox never emptied after the pause"
            try:
                outbox.flush()
            except BusUnavailable:
                timeouts += 1
        stored = stored_on(bus, topic)
    assert timeouts > 0, "the pause never made an acknowledgement time out"
    assert len(stored) == 40 * 50
    assert [key for key, count in stored.items() if count > 1] == []


def test_records_the_producer_could_not_take_are_sent_once_it_can(broker: Broker) -> None:
    kafka = broker.started()
    warm, topic = (f"outage.{os.urandom(5).hex()}" for _ in range(2))
    _created(kafka, {warm: 1, topic: 2})
    with KafkaBus(kafka.bootstrap, timeout=2.0) as bus:
        bus.publish([Record(warm, b"producer connected")])
        # Longer than the bus's wait for the topic's description (its request timeout, at least
        # 5 s): paused for 5 s, a loaded broker was back before it, and the flush went through.
        resumed = broker.pause(12.0)
        outbox = Outbox(bus)
        # Keyless, to a topic the producer has no metadata for: send() cannot take them.
        outbox.add([Record(topic, str(i).encode()) for i in range(100)])
        with pytest.raises(BusUnavailable):
            outbox.flush()
        resumed.join()
        deadline = time.monotonic() + 60
        while outbox:
            assert time.monotonic() < deadline, "the outbox never emptied after the pause"
            with contextlib.suppress(BusUnavailable):
                outbox.flush()
        stored = stored_on(bus, topic)
    assert sorted(int(value or b"") for _, value in stored) == list(range(100))
    assert set(stored.values()) == {1}


@pytest.mark.parametrize(
    ("client", "bound"),
    [(KafkaBus, 5.0), (ConfluentBus, 2.0)],
    ids=["kafka-python", "confluent-kafka"],
)
def test_a_commit_and_a_close_end_within_the_timeout_through_a_pause_and_lose_nothing(
    broker: Broker, client: type[KafkaBus | ConfluentBus], bound: float
) -> None:
    """librdkafka's synchronous commit waited for the paused broker for as long as the pause
    lasted (370 s), and its assignment and close with it: a notifier told to stop never
    stopped. Bounded now (kafka-python's by its request time-out, at least 5 s); what the group
    reads next starts at its last commit that landed, so nothing handled but not committed is
    skipped."""
    kafka = broker.started()
    topic, group = f"outage.{os.urandom(5).hex()}", f"outage-{os.urandom(5).hex()}"
    _created(kafka, {topic: 1})
    partition = TopicPartition(topic, 0)
    with KafkaBus(kafka.bootstrap) as writer:
        writer.publish([Record(topic, str(i).encode()) for i in range(20)])
    with client(kafka.bootstrap, timeout=2.0) as bus:
        consumer = bus.subscribe([topic], group)
        _read(consumer, 20)
        consumer.commit({partition: 10})
        resumed = broker.pause(12.0)
        started = time.monotonic()
        with pytest.raises(BusError):
            consumer.commit({partition: 20})
        # What a notifier asks before its last commit: librdkafka answers it only after the
        # commit left behind ends.
        assert consumer.assignment() == {partition}
        with pytest.raises(BusError):
            consumer.commit({partition: 20})
        consumer.close()
        took = time.monotonic() - started
        resumed.join()
    assert took < bound * 3 + 3.0, f"commits and close took {took:.1f} s"
    with client(kafka.bootstrap, timeout=10.0) as bus:
        again = bus.subscribe([topic], group)
        committed = again.committed(partition)
        assert committed in (10, 20)  # the commit given up on landed after the pause, or never
        assert [m.offset for m in _read(again, 20 - committed)] == list(range(committed, 20))
        again.close()


@pytest.mark.parametrize(
    "client", [KafkaBus, ConfluentBus], ids=["kafka-python", "confluent-kafka"]
)
def test_a_bus_closes_within_its_timeout_holding_records_a_paused_broker_never_took(
    broker: Broker, client: type[KafkaBus | ConfluentBus]
) -> None:
    """kafka-python's producer raised KafkaTimeoutError out of close, past the store's close, at
    every component's exit during an outage."""
    kafka = broker.started()
    topic = f"outage.{os.urandom(5).hex()}"
    _created(kafka, {topic: 1})
    bus = client(kafka.bootstrap, timeout=2.0)
    bus.publish([Record(topic, b"connected")])
    resumed = broker.pause(8.0)
    bus.send([Record(topic, b"never acknowledged before the close")])
    started = time.monotonic()
    bus.close()
    took = time.monotonic() - started
    resumed.join()
    assert took < 2.0 + 3.0, f"the close took {took:.1f} s"


def test_a_transactional_producer_closes_within_its_timeout_mid_transaction_through_a_pause(
    broker: Broker,
) -> None:
    """kafka-python's transactional producer closed as the bus's did: KafkaTimeoutError out of
    close while a transaction's records waited for a paused broker."""
    kafka = broker.started()
    topic = f"outage.{os.urandom(5).hex()}"
    _created(kafka, {topic: 1})
    with KafkaBus(kafka.bootstrap) as warm:  # the broker's first transaction sets it up: slow
        first = warm.transactional("warm")
        first.prepare()
        first.close()
    with KafkaBus(kafka.bootstrap, timeout=2.0) as bus:
        transactional = bus.transactional("outage")
        transactional.prepare()
        producer = transactional._producer  # type: ignore[attr-defined]
        producer.partitions_for(topic)  # known before the pause: send() does not wait for it
        resumed = broker.pause(8.0)
        producer.begin_transaction()  # by hand: publish() would wait for its end
        producer.send(topic, b"never acknowledged before the close")
        started = time.monotonic()
        transactional.close()
        took = time.monotonic() - started
        resumed.join()
    assert took < 2.0 + 3.0, f"the close took {took:.1f} s"


def _read(consumer: Consumer, count: int) -> list[Message]:
    read: list[Message] = []
    deadline = time.monotonic() + 60
    while len(read) < count:
        assert time.monotonic() < deadline, f"read {len(read)} of {count}"
        read += consumer.consume(count - len(read), 0.5)
    return read


def test_the_producer_publishes_each_event_and_label_once_through_a_pause(
    broker: Broker,
    stream_name: str,
    write_config: Callable[..., Path],
    spawn: Callable[..., Child],
) -> None:
    kafka = broker.started()
    stream = synthetic("sea").stream_config(stream_name)
    env = {
        "MEANDER_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "MEANDER_KAFKA_TIMEOUT_SECONDS": "2",
        "MEANDER_PRODUCER__SOURCE": "sea",
        "MEANDER_PRODUCER__EVENTS": "6000",
        "MEANDER_PRODUCER__RATE": "500",
        "MEANDER_PRODUCER__LABEL_DELAY": "100",
        "MEANDER_PRODUCER__PROGRESS": "false",
    }
    producer = spawn(
        "producer", [MEANDER, "run", "producer", "--config", str(write_config(stream))], env
    )
    with KafkaBus(kafka.bootstrap) as bus:
        events = topics.events(stream_name)
        _wait_until_published(bus, events, 1_000, producer)
        broker.pause(6.0).join()
        assert producer.process.wait(120) == 0, producer.output()
        assert "not acknowledge" in producer.output()  # the pause made a publish time out
        _assert_each_stored_once(bus, [events, topics.feedback(stream_name)], 6_000)


def _wait_until_published(bus: Bus, topic: str, count: int, producer: Child) -> None:
    deadline = time.monotonic() + 120
    while not _has(bus, topic, count):
        assert producer.process.poll() is None, producer.output()
        assert time.monotonic() < deadline, f"nothing published:\n{producer.output()}"
        time.sleep(0.1)


def _assert_each_stored_once(bus: Bus, wanted: list[str], count: int) -> None:
    for topic in wanted:
        stored = stored_on(bus, topic)
        assert len(stored) == count, f"{topic}: {len(stored)} distinct records"
        repeated = [key for key, n in stored.items() if n > 1]
        assert repeated == [], f"{topic}: {len(repeated)} records stored more than once"


def _has(bus: Bus, topic: str, count: int) -> bool:
    try:
        partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    except Exception:  # not created yet
        return False
    with bus.assign(partitions) as reader:
        return sum(reader.end_offsets(partitions).values()) >= count


def test_a_producer_killed_and_started_again_publishes_each_event_and_label_once(
    stream_name: str,
    write_config: Callable[..., Path],
    spawn: Callable[..., Child],
    kafka_bootstrap: str,
) -> None:
    stream = synthetic("sea").stream_config(stream_name)
    env = {
        "MEANDER_PRODUCER__SOURCE": "sea",
        "MEANDER_PRODUCER__EVENTS": "6000",
        "MEANDER_PRODUCER__RATE": "1000",
        "MEANDER_PRODUCER__LABEL_DELAY": "300",
        "MEANDER_PRODUCER__PROGRESS": "false",
    }
    run = [MEANDER, "run", "producer", "--config", str(write_config(stream))]
    producer = spawn("producer", run, env)
    with KafkaBus(kafka_bootstrap) as bus:
        events = topics.events(stream_name)
        _wait_until_published(bus, events, 2_000, producer)
        producer.process.send_signal(signal.SIGKILL)  # mid-stream, batches on their way
        producer.process.wait(30)
        again = spawn("producer", run, env)
        assert again.process.wait(120) == 0, again.output()
        assert "resuming after what" in again.output()
        _assert_each_stored_once(bus, [events, topics.feedback(stream_name)], 6_000)
