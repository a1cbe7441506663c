"""The loop survives faults, loses nothing and does each thing once: a deployment of one stream
(3 partitions) on a Kafka broker and a Redis server of its own, every component its own
``meander run`` process (predictions exactly once), the project's producer publishing a
drifting stream with late labels. The learner, a predictor and the monitor run on
confluent-kafka, the rest on kafka-python (``CLIENTS``): both clients go through every fault in
one run, and each reads what the other wrote.

While it runs, the components are SIGKILLed and restarted in two waves of three (the producer
with the first), Redis restarts with its data and then without it, and the broker restarts; each
fault waits for the loop to predict again after the one before. Then: every event was predicted
once (read committed), every label learned once, each alert announced once to the webhook, no
champion answered null once a model had learned, every consumer group committed all it read,
and each killed component was working again after its restart. How long that took (seconds
from the restart to the component's "working" log line) is printed, not asserted: on a shared
machine it is mostly waiting for a CPU (docs/guarantees.md has the figures).
"""

from __future__ import annotations

import collections
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaPartition
from kafka.errors import KafkaError

from meander import topics
from meander.bus import Message
from meander.config import Settings
from meander.consumers.learner.checkpoint import Checkpoints
from meander.events import Envelope, Feedback, Prediction, decode_batch
from meander.infra.kafka import LocalKafka
from meander.infra.redis import LocalRedis
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1_200)]

STREAM = "faults"
EVENTS = 6_000
RATE = 60.0  # events per second: the stream lasts 100 s, through the faults below
PROGRESS = 120  # events the predictors commit after a fault before the next one
RECOVERY = 240.0  # seconds a restarted component may take to work again (imports, joins)
COMPONENTS = ("learner", "predictor-1", "predictor-2", "trainer", "monitor", "notifier")
# The Kafka client of each component (the others', and the producer's, kafka-python): one of
# the two predictors, the learner (the trainer's replay reads on kafka-python) and the monitor.
CLIENTS = {
    "learner": "confluent-kafka",
    "predictor-1": "confluent-kafka",
    "monitor": "confluent-kafka",
}
GROUPS = {  # consumer group -> the topics it reads
    f"meander-predictor-{STREAM}": [topics.events(STREAM)],
    f"meander-monitor-{STREAM}": [topics.events(STREAM)],
    f"meander-trainer-{STREAM}": [topics.MODELS],
    "meander-notifier": [topics.ALERTS, topics.MODELS],
}


@dataclass
class Process:
    name: str
    child: Any  # the integration area's Child
    started: float  # wall clock, when it was spawned

    def working_at(self) -> float | None:
        """When it logged that it works, or None."""
        for line in self.child.output().splitlines():
            if line.startswith("{") and '"working":true' in line:
                return datetime.fromisoformat(orjson.loads(line)["time"]).timestamp()
        return None


@dataclass
class Deployment:
    kafka: LocalKafka
    store: LocalRedis
    config: Path
    settings: Settings
    spawn: Callable[..., Any]
    processes: dict[str, Process] = field(default_factory=dict)
    recoveries: dict[str, float] = field(default_factory=dict)

    def env(self, name: str) -> dict[str, str]:
        return {
            "MEANDER_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "MEANDER_REDIS_URL": self.store.url,
            # Its restarts keep the name: a group takes a restarted member back at once.
            "MEANDER_INSTANCE_ID": name,
            "MEANDER_PROCESSING_GUARANTEE": "exactly_once",
            "MEANDER_KAFKA_CLIENT": CLIENTS.get(name, "kafka-python"),
        }

    def start(self, name: str) -> Process:
        component = name.split("-")[0]
        meander = str(Path(sys.executable).parent / "meander")
        child = self.spawn(
            name, [meander, "run", component, "--config", str(self.config)], self.env(name)
        )
        self.processes[name] = Process(name, child, time.time())
        return self.processes[name]

    def wait_working(self, name: str, timeout: float) -> float:
        """Seconds from the process's start to its saying it works."""
        process = self.processes[name]
        deadline = time.monotonic() + timeout
        while (at := process.working_at()) is None:
            if process.child.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{name} not working {timeout:g} s after its start:\n"
                    f"{process.child.output()[-4000:]}"
                )
            time.sleep(0.2)
        return at - process.started

    def kill_and_restart(self, *names: str) -> None:
        """SIGKILL the processes ``names`` together, start them again, wait until they work."""
        for name in names:
            self.processes[name].child.process.send_signal(signal.SIGKILL)
        for name in names:
            self.processes[name].child.process.wait(30)
        time.sleep(1.0)
        for name in names:
            self.start(name)
        for name in names:
            self.recoveries[name] = self.wait_working(name, timeout=RECOVERY)

    def wait_stored(self, topic: str, count: int, timeout: float) -> None:
        """Until ``topic`` holds ``count`` records."""
        deadline = time.monotonic() + timeout
        while stored(self.kafka.bootstrap, topic) < count:
            assert time.monotonic() < deadline, f"{topic} holds less than {count} records"
            time.sleep(0.5)

    def wait_progress(self, timeout: float = RECOVERY) -> None:
        """Until the predictors have committed ``PROGRESS`` events more than now, or all of
        the stream once the producer has finished: the loop works again after a fault."""
        group = f"meander-predictor-{STREAM}"
        start = committed_total(self.kafka.bootstrap, group)
        deadline = time.monotonic() + timeout
        while (done := committed_total(self.kafka.bootstrap, group)) < start + PROGRESS:
            ended = self.processes["producer"].child.process.poll() is not None
            if ended and done >= stored(self.kafka.bootstrap, topics.events(STREAM)):
                return
            assert time.monotonic() < deadline, f"no predictions {timeout:g} s after a fault"
            time.sleep(0.5)

    def restart_redis(self, *, keep_data: bool) -> None:
        self.store.stop()
        if not keep_data:
            assert self.store.data_dir is not None
            for path in self.store.data_dir.iterdir():
                if path.name != self.store.log_path.name:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.store.start(timeout=60)

    def restart_kafka(self, down: float) -> None:
        self.kafka.stop()
        time.sleep(down)
        self.kafka.start(timeout=180)

    def stop(self) -> None:
        for process in self.processes.values():
            code = process.child.stop(timeout=120)
            assert code == 0, (
                f"{process.name} exited with {code}:\n{process.child.output()[-3000:]}"
            )


@pytest.fixture
def deployment(
    tmp_path: Path, spawn: Callable[..., Any], write_config: Callable[..., Path], hook_server: Any
) -> Iterator[tuple[Deployment, Any]]:
    hook = hook_server()
    kafka = LocalKafka(data_dir=tmp_path / "kafka")
    store = LocalRedis(data_dir=tmp_path / "redis")
    try:
        kafka.start(timeout=180)
        store.start(timeout=60)
        stream = synthetic("agrawal").stream_config(STREAM, model="tree.HoeffdingTreeClassifier")
        producer = {
            "source": "agrawal",
            "events": EVENTS,
            "rate": RATE,
            "label_delay": 100,
            "label_delay_max": 300,
            "drift_every": EVENTS // 2,
            "progress": False,
        }
        notifier = {"webhooks": [{"url": hook.url()}], "backoff_seconds": 0.1}
        config = write_config(stream, producer=producer, notifier=notifier)
        settings = Settings(
            kafka_bootstrap=kafka.bootstrap,
            redis_url=store.url,
            model_signing_key="integration-signing-key-0123456789",
            streams=[stream],
        )
        yield Deployment(kafka, store, config, settings, spawn), hook
    finally:  # the spawn fixture kills the processes still running, after this
        kafka.stop()
        store.stop()


def test_the_loop_survives_kills_and_outages_and_does_each_thing_once(
    deployment: tuple[Deployment, Any],
) -> None:
    run, hook = deployment
    for name in COMPONENTS:
        run.start(name)
    for name in COMPONENTS:
        run.wait_working(name, timeout=240)
    run.start("producer")
    run.wait_stored(topics.events(STREAM), PROGRESS, timeout=120)

    # Faults, one after the other, while the stream flows: the components in two waves (a
    # predictor, and the learner or the trainer, always live; the producer mid-stream with the
    # first), then the servers. Each waits until the loop predicts again after the last.
    for wave in ((*COMPONENTS[0::2], "producer"), COMPONENTS[1::2]):
        run.wait_progress()
        run.kill_and_restart(*wave)
    run.wait_progress()
    run.restart_redis(keep_data=True)
    run.wait_progress()
    run.restart_redis(keep_data=False)
    run.wait_progress()
    run.restart_kafka(down=5)

    # The stream to its end (the producer's process ends with its source), every label
    # learned and every event predicted, before the components are stopped.
    producer = run.processes["producer"].child
    assert producer.process.wait(600) == 0, producer.output()[-3000:]
    # The restarted producer took up after what its topics held (the asserts below: once).
    assert "resuming after what" in producer.output(), producer.output()[-3000:]
    learned = wait_until_learned(run, timeout=300)
    # Every group read and committed to the ends before the stop: a group still behind when it
    # is stopped (the notifier on the models a late race announced) has records left to read,
    # which is not what the check below is about.
    for group in GROUPS:
        wait_committed(run.kafka.bootstrap, group, timeout=300)
    run.stop()

    with Runtime.open(run.settings, create_topics=False) as runtime:
        events = read(runtime.settings, topics.events(STREAM))
        predictions = read(runtime.settings, topics.predictions(STREAM), committed=True)
        feedback = read(runtime.settings, topics.feedback(STREAM))
        alerts = read(runtime.settings, topics.ALERTS)

    expected = {s.event_id for s in synthetic("agrawal", drift_every=EVENTS // 2).samples(EVENTS)}
    published = [e.payload.id for e in events]  # type: ignore[attr-defined]
    assert set(published) == expected, "events lost or foreign"
    labels = [e.payload.event_id for e in feedback if isinstance(e.payload, Feedback)]
    assert set(labels) == expected

    # Every event predicted; exactly once to a read_committed reader.
    champion = champion_answers(predictions)
    missing = expected - champion.keys()
    assert not missing, (
        f"{len(missing)} events without a champion prediction:\n{whereabouts(run, missing)}"
    )
    repeated = {event: len(answers) for event, answers in champion.items() if len(answers) > 1}
    assert not repeated, f"{len(repeated)} events predicted more than once"

    # No null once a model had learned: per partition, after the first answer, only answers.
    for partition, answers in nulls_by_partition(predictions).items():
        first = next((i for i, answer in enumerate(answers) if answer is not None), len(answers))
        late = [i for i in range(first, len(answers)) if answers[i] is None]
        assert not late, f"{len(late)} null champion predictions on partition {partition}"

    # Every label learned, once: the learner's count is the number of labels.
    assert learned == len(expected)

    # Each alert announced once to the webhook, and every one of them.
    delivered = collections.Counter(r.headers["x-meander-event-id"] for r in hook.received)
    announced = {e.id for e in alerts}
    assert set(delivered) >= announced
    assert all(count == 1 for count in delivered.values()), delivered.most_common(3)

    # Every group committed all it read.
    for group, read_topics in GROUPS.items():
        assert_committed(run.kafka.bootstrap, group, read_topics)

    print("seconds from restart to working:", {n: round(s, 1) for n, s in run.recoveries.items()})
    assert run.recoveries.keys() == {*COMPONENTS, "producer"}


def whereabouts(run: Deployment, missing: set[str]) -> str:
    """Where events without a prediction went: their records, the dead letters and any answer
    to them (committed or not) that mention them, the predictors' commits and their logs."""
    ids = sorted(missing)[:5]
    found = []
    with Runtime.open(run.settings, create_topics=False) as runtime:
        settings = runtime.settings
        for topic, committed in (
            (topics.events(STREAM), False),
            (topics.DEADLETTER, False),
            (topics.predictions(STREAM), False),
            (topics.predictions(STREAM), True),
        ):
            for message in records(settings, topic, committed=committed):
                named = [i for i in ids if i.encode() in (message.value or b"")]
                if named:
                    found.append(
                        f"{topic}[{message.partition}]@{message.offset}"
                        f"{' (read committed)' if committed else ''}: {named} "
                        f"headers {[(k, v) for k, v in message.headers if k != 'ce_data']}"
                    )
    offsets = group_offsets(run.kafka.bootstrap, f"meander-predictor-{STREAM}")
    logs = {
        name: process.child.output()[-2500:]
        for name, process in run.processes.items()
        if name.startswith("predictor")
    }
    return "\n".join([*found, f"committed: {offsets}", *(f"{n}: {o}" for n, o in logs.items())])


def wait_until_learned(run: Deployment, timeout: float) -> int:
    """The labels the learner's checkpoint holds, once it holds them all (or the deadline)."""
    with Runtime.open(run.settings, create_topics=False) as runtime:
        checkpoints = Checkpoints(runtime, run.settings.streams[0])
        deadline = time.monotonic() + timeout
        learned = 0
        while time.monotonic() < deadline:
            state = checkpoints.load()
            learned = 0 if state is None else state.labels
            if learned >= EVENTS:
                return learned
            time.sleep(1.0)
        return learned


def read(settings: Settings, topic: str, *, committed: bool = False) -> list[Envelope]:
    """Every message of ``topic``, decoded; only committed transactions' when asked."""
    return decode_batch(records(settings, topic, committed=committed))[0]


def records(settings: Settings, topic: str, *, committed: bool = False) -> list[Message]:
    """Every record of ``topic`` as read; only committed transactions' when asked."""
    assert settings.kafka_bootstrap is not None
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        isolation_level="read_committed" if committed else "read_uncommitted",
        enable_auto_commit=False,
    )
    try:
        found_partitions = consumer.partitions_for_topic(topic) or ()
        partitions = [KafkaPartition(topic, p) for p in found_partitions]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        found: list[Message] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(p) < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                found += [
                    Message(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple(r.headers),
                        r.timestamp,
                    )
                    for r in batch
                ]
        return found
    finally:
        consumer.close()


def champion_answers(predictions: list[Envelope]) -> dict[str, list[Any]]:
    answers: dict[str, list[Any]] = collections.defaultdict(list)
    for envelope in predictions:
        payload = envelope.payload
        if isinstance(payload, Prediction) and payload.role == "champion":
            answers[payload.event_id].append(payload.prediction)
    return answers


def nulls_by_partition(predictions: list[Envelope]) -> dict[int, list[Any]]:
    by_partition: dict[int, list[tuple[int, Any]]] = collections.defaultdict(list)
    for envelope in predictions:
        payload = envelope.payload
        if isinstance(payload, Prediction) and payload.role == "champion":
            message = envelope.message
            by_partition[message.partition].append((message.offset, payload.prediction))
    return {p: [answer for _, answer in sorted(found)] for p, found in by_partition.items()}


def stored(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (0 before it exists)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        found = consumer.partitions_for_topic(topic) or ()
        return sum(consumer.end_offsets([KafkaPartition(topic, p) for p in found]).values())
    finally:
        consumer.close()


def committed_total(bootstrap: str, group: str) -> int:
    """The sum of ``group``'s committed offsets."""
    return sum(o.offset for o in group_offsets(bootstrap, group).values())


def group_offsets(bootstrap: str, group: str, timeout: float = 120.0) -> dict[Any, Any]:
    """``group``'s committed offsets, asked again while the broker cannot say yet (a
    coordinator still loading after the broker's restart)."""
    deadline = time.monotonic() + timeout
    while True:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            found: dict[Any, Any] = admin.list_group_offsets(group).get(group, {})
            return found
        except KafkaError as error:
            if not error.retriable or time.monotonic() > deadline:
                raise
        finally:
            admin.close()
        time.sleep(0.5)


def wait_committed(bootstrap: str, group: str, timeout: float) -> None:
    """Until ``group`` has committed to the ends of the topics it reads (or the deadline)."""
    deadline = time.monotonic() + timeout
    while behind(bootstrap, group, GROUPS[group]) and time.monotonic() < deadline:
        time.sleep(1.0)


def assert_committed(bootstrap: str, group: str, read_topics: list[str]) -> None:
    late = behind(bootstrap, group, read_topics)
    assert not late, f"group {group} did not commit all it read: {late}"


def behind(bootstrap: str, group: str, read_topics: list[str]) -> dict[str, Any]:
    """Per partition ``group`` has not committed to its end: (committed, end)."""
    committed = group_offsets(bootstrap, group)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            KafkaPartition(topic, p)
            for topic in read_topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        ends = consumer.end_offsets(partitions)
        return {
            f"{p.topic}[{p.partition}]": (committed[p].offset if p in committed else None, ends[p])
            for p in partitions
            if ends[p] and (p not in committed or committed[p].offset < ends[p])
        }
    finally:
        consumer.close()
