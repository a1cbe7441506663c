"""Any Kafka client feeds a stream: kcat, Kafka's own console producer, kafka-python and the
CloudEvents SDK, writing binary-mode CloudEvents, structured-mode CloudEvents and plain JSON.

On the real broker, with a predictor and a learner running in this process: every event gets
its champion prediction under the id the rules give (the value's, else the CloudEvents id or
the Kafka key, else topic-partition-offset), with the event time the rules give (the value's,
else ce_time, else the record's timestamp); feedback in every encoding is joined; malformed
records of every encoding are dead-lettered, beside good ones, with a reason that says what to
change; and a stream that asks for plain JSON predictions gets them, and still learns. Every
example in docs/kafka.md runs, in the order written, and does what the text around it says.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent
from kafka import KafkaProducer

from meander import topics
from meander.bus import Message, TopicPartition
from meander.component import Component
from meander.config import Settings, StreamConfig
from meander.consumers.learner import Learner, LearnerState
from meander.consumers.predictor import Predictor
from meander.events import DeadLetter, FeatureEvent, Prediction, decode_batch
from meander.runtime import Runtime

SIGNING_KEY = "any-client test key, long enough to sign model blobs"
FEATURES = {"amount": "numeric", "country": "categorical"}
EVENT_TYPE = FeatureEvent.type
FEEDBACK_TYPE = "io.meander.feedback.v1"
STEP_BOUND = 120.0  # seconds a stream may take to predict or learn what was published
DOC = Path(__file__).parents[2] / "docs" / "kafka.md"
# Each example in the doc is a fenced block after a comment saying what it does, for this test.
EXAMPLE = re.compile(r"<!-- example: (\w+)(?: ([^\n]*?))? -->\n```(\w+)\n(.*?)```", re.DOTALL)


@dataclass
class World:
    """A stream on the real broker with its predictor and learner, and the clients to feed it."""

    runtime: Runtime
    stream: StreamConfig
    predictor: Predictor
    learner: Learner
    bootstrap: str
    kcat_path: str
    console: Path  # a directory holding bin/kafka-console-producer.sh, as a distribution does
    producer: KafkaProducer

    @property
    def events(self) -> str:
        return topics.events(self.stream.name)

    @property
    def feedback(self) -> str:
        return topics.feedback(self.stream.name)

    def kcat(self, topic: str, lines: Sequence[str], *options: str) -> None:
        """``kcat -P``: one message per line, with the given options (-k, -K, -H)."""
        run(
            [self.kcat_path, "-b", self.bootstrap, "-P", "-t", topic, *options],
            "\n".join(lines) + "\n",
        )

    def console_producer(self, topic: str, lines: Sequence[str], *properties: str) -> None:
        command = [str(self.console / "bin" / "kafka-console-producer.sh")]
        command += ["--bootstrap-server", self.bootstrap, "--topic", topic]
        for setting in properties:
            command += ["--property", setting]
        run(command, "\n".join(lines) + "\n")

    def sdk(self, topic: str, event: CloudEvent, *, structured: bool) -> None:
        """The CloudEvents SDK's Kafka binding, sent with kafka-python."""
        message = (
            ce_kafka.to_structured_event(event) if structured else ce_kafka.to_binary_event(event)
        )
        key = message.key.encode() if isinstance(message.key, str) else message.key
        self.send(topic, message.value, key, list(message.headers.items()))

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.producer.send(topic, value=value, key=key, headers=headers or [])
        self.producer.flush()

    def step_until(self, done: Callable[[], bool], what: str, *components: Component) -> None:
        deadline = time.monotonic() + STEP_BOUND
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what}: timed out after {STEP_BOUND:g} s")
            for component in components:
                component.step(0.2)

    def read(self, topic: str) -> list[Message]:
        partitions = [TopicPartition(topic, p) for p in range(self.runtime.bus.partitions(topic))]
        with self.runtime.bus.assign(partitions) as reader:
            ends = reader.end_offsets(partitions)
            found: list[Message] = []
            deadline = time.monotonic() + 30
            while any(reader.position(p) < ends[p] for p in partitions):
                assert time.monotonic() < deadline, f"could not read {topic} to its end"
                found += reader.consume(1_000, 0.2)
        return found

    def predictions(self) -> dict[str, Prediction]:
        """The champion's prediction of each event so far, by event id."""
        envelopes, rejected = decode_batch(self.read(topics.predictions(self.stream.name)))
        assert not rejected, rejected[:2]
        return {
            e.payload.event_id: e.payload
            for e in envelopes
            if isinstance(e.payload, Prediction) and e.payload.role == "champion"
        }

    def dead_letters(self) -> dict[bytes, str]:
        """The reason of each record of this stream dead-lettered so far, by original value."""
        envelopes, _ = decode_batch(self.read(topics.DEADLETTER))
        return {
            e.payload.original_value(): e.payload.reason
            for e in envelopes
            if isinstance(e.payload, DeadLetter) and e.payload.topic in (self.events, self.feedback)
        }

    def dead_lettered(self, text: str) -> bool:
        """Whether a record of this stream was dead-lettered with ``text`` in its reason."""
        return any(text in reason for reason in self.dead_letters().values())


def found_served(state: LearnerState) -> int:
    """How many labels found the champion's served prediction: scored, or counted unanswered
    when the champion had learned nothing yet (an untrained tree answers None)."""
    scored = state.served["champion"].n if "champion" in state.served else 0
    return int(scored) + state.counts["unanswered"]


def run(command: list[str], stdin: str) -> None:
    done = subprocess.run(command, input=stdin.encode(), capture_output=True, timeout=120)
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr.decode()[-2000:]}"


def json(value: Any) -> str:
    return orjson.dumps(value).decode()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def make_world(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    redis_url: str,
    kcat: str,
    console_tools: Path,
) -> Iterator[Callable[..., World]]:
    """Worlds whose bus runs on kafka-python, or on the client a test asks for indirectly."""
    client = getattr(request, "param", "kafka-python")
    opened: list[tuple[Runtime, KafkaProducer, Component, Component]] = []

    def make(**encoding: Any) -> World:
        stream = StreamConfig(
            name=f"any{uuid.uuid4().hex[:10]}",
            task="binary",
            features=FEATURES,  # type: ignore[arg-type]
            model="tree.HoeffdingTreeClassifier",  # reads the categorical country as it is
            encoding=encoding,  # type: ignore[arg-type]
        )
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            model_signing_key=SIGNING_KEY,
            streams=[stream],
            kafka_client=client,
        )
        runtime = Runtime.open(settings)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        learner = Learner(runtime, stream, batch=100)
        learner.step(0.0)  # registers the configured model as the first champion
        predictor = Predictor(runtime, stream, batch=100)
        opened.append((runtime, producer, predictor, learner))
        return World(
            runtime, stream, predictor, learner, kafka_bootstrap, kcat, console_tools, producer
        )

    yield make
    for runtime, producer, predictor, learner in opened:
        predictor.close()
        learner.close()
        producer.close()
        runtime.close()


@pytest.mark.integration
@pytest.mark.parametrize("make_world", ["kafka-python", "confluent-kafka"], indirect=True)
def test_every_client_and_encoding_gets_predictions_and_its_feedback_joined(
    make_world: Callable[..., World],
) -> None:
    world = make_world(id_field="order_id", time_field="ts")
    # -- events, each client in each encoding it offers ---------------------------------------
    world.kcat(
        world.events,
        [
            json({"id": "kc-payload", "features": {"amount": 1.0, "country": "FR"}}),
            json(
                {"order_id": "kc-flat", "ts": "2020-05-01T00:00:00Z", "amount": 2, "country": "DE"}
            ),
        ],
    )
    world.kcat(world.events, [f"kc-key|{json({'amount': 3.5, 'country': 'FR'})}"], "-K|")
    world.kcat(world.events, [json({"amount": 404.0, "country": "NL"})])  # no id, no key
    world.kcat(
        world.events,
        [json({"features": {"amount": 5.0, "country": "FR"}})],
        *("-H", "ce_specversion=1.0", "-H", "ce_id=kc-binary", "-H", "ce_source=/kcat"),
        *("-H", f"ce_type={EVENT_TYPE}", "-H", "ce_time=2021-01-01T00:00:00Z"),
    )
    structured = {
        "specversion": "1.0",
        "id": "kc-structured",
        "source": "/kcat",
        "type": EVENT_TYPE,
        "data": {"features": {"amount": 6.0, "country": "DE"}},
    }
    world.kcat(world.events, [json(structured)], "-H", "content-type=application/cloudevents+json")
    world.console_producer(
        world.events,
        [f"cp-key\t{json({'amount': 7.0, 'country': 'FR'})}"],
        "parse.key=true",
    )
    headers = f"ce_specversion:1.0,ce_id:cp-binary,ce_source:/console,ce_type:{EVENT_TYPE}"
    world.console_producer(
        world.events,
        [f"{headers}\tcp-binary\t{json({'features': {'amount': 8.0, 'country': 'DE'}})}"],
        "parse.key=true",
        "parse.headers=true",
    )
    data = {"features": {"amount": 9.0, "country": "FR"}}
    attributes = {"type": EVENT_TYPE, "source": "/sdk", "id": "sdk-binary"}
    world.sdk(
        world.events,
        CloudEvent({**attributes, "time": moment("2019-03-04T05:06:07+00:00")}, data),
        structured=False,
    )
    world.sdk(
        world.events, CloudEvent({**attributes, "id": "sdk-structured"}, data), structured=True
    )
    world.send(world.events, orjson.dumps({"order_id": 4242, "amount": 10.0, "country": "NL"}))

    named = {"kc-payload", "kc-flat", "kc-key", "kc-binary", "kc-structured", "cp-key"}
    named |= {"cp-binary", "sdk-binary", "sdk-structured", "4242"}
    world.step_until(
        lambda: len(world.predictions()) >= len(named) + 1,
        "every event's prediction",
        world.predictor,
        world.learner,
    )
    records = {m.value: m for m in world.read(world.events)}
    keyless = next(m for m in records.values() if b"404.0" in m.value)
    derived = f"{world.events}-{keyless.partition}-{keyless.offset}"
    predicted = world.predictions()
    assert set(predicted) == named | {derived}
    assert world.dead_letters() == {}
    times = {event_id: p.event_time for event_id, p in predicted.items()}
    assert times["kc-flat"] == moment("2020-05-01T00:00:00+00:00")
    assert times["kc-binary"] == moment("2021-01-01T00:00:00+00:00")  # ce_time
    assert times["sdk-binary"] == moment("2019-03-04T05:06:07+00:00")  # ce_time, from the SDK
    payload_record = next(m for m in records.values() if b"kc-payload" in m.value)
    assert times["kc-payload"] == datetime.fromtimestamp(payload_record.timestamp_ms / 1000, UTC)

    # -- feedback, in each encoding -------------------------------------------------------------
    world.kcat(world.feedback, ["kc-payload|true", "kc-flat|false"], "-K|")
    world.kcat(world.feedback, [json({"event_id": "kc-key", "label": True})])
    world.kcat(world.feedback, [json({"event_id": derived, "label": False})])
    world.console_producer(
        world.feedback,
        [f"kc-binary\t{json({'label': True})}", f"kc-structured\t{json({'label': False})}"],
        "parse.key=true",
    )
    headers = f"ce_specversion:1.0,ce_id:f1,ce_source:/console,ce_type:{FEEDBACK_TYPE}"
    world.console_producer(
        world.feedback,
        [f"{headers}\tcp-key\t{json({'label': True})}"],  # the event id is the key
        "parse.key=true",
        "parse.headers=true",
    )
    labelled = {"type": FEEDBACK_TYPE, "source": "/sdk"}
    world.sdk(
        world.feedback,
        CloudEvent(labelled, {"event_id": "cp-binary", "label": True}),
        structured=False,
    )
    world.sdk(
        world.feedback,
        CloudEvent({**labelled, "partitionkey": "sdk-binary"}, {"label": False}),
        structured=True,
    )
    world.sdk(
        world.feedback,
        CloudEvent(labelled, {"event_id": "sdk-structured", "label": True}),
        structured=True,
    )
    world.send(world.feedback, b"true", key=b"4242")

    labels = len(named) + 1
    world.step_until(lambda: world.learner.handled_labels >= labels, "every label", world.learner)
    state = world.learner.state
    assert state is not None
    assert state.labels == labels
    assert state.counts["unmatched"] == 0 and state.counts["rejected_feedback"] == 0
    assert found_served(state) == labels  # each label found the prediction served for it


CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.mark.integration
@pytest.mark.parametrize("make_world", ["kafka-python", "confluent-kafka"], indirect=True)
def test_batches_compressed_by_any_client_with_any_codec_are_read_whole(
    make_world: Callable[..., World],
) -> None:
    """Every codec Kafka has, from kcat, the console producer, kafka-python and librdkafka.

    Without the codec libraries kafka-python raised on every poll of a partition holding a
    snappy, lz4 or zstd batch: the predictor's step failed for good, and no event after the
    batch was predicted.
    """
    from confluent_kafka import Producer

    world = make_world()

    def event(event_id: str) -> str:
        return json({"id": event_id, "features": {"amount": 1.5, "country": "FR"}})

    world.kcat(world.events, [event("plain-before")])
    named = {"plain-before"}
    for codec in CODECS:
        batch = [f"kc-{codec}-{i}" for i in range(3)]
        world.kcat(world.events, [event(i) for i in batch], "-z", codec)
        setting = [f"--producer-property=compression.type={codec}"]
        command = [str(world.console / "bin" / "kafka-console-producer.sh"), *setting]
        command += ["--bootstrap-server", world.bootstrap, "--topic", world.events]
        run(command, "\n".join(event(f"cpz-{codec}-{i}") for i in range(3)) + "\n")
        compressing = KafkaProducer(bootstrap_servers=world.bootstrap, compression_type=codec)
        for i in range(3):
            compressing.send(world.events, event(f"py-{codec}-{i}").encode())
        compressing.close()
        librdkafka = Producer({"bootstrap.servers": world.bootstrap, "compression.type": codec})
        for i in range(3):
            librdkafka.produce(world.events, event(f"rd-{codec}-{i}").encode())
        assert librdkafka.flush(30) == 0
        named |= set(batch) | {f"{p}-{codec}-{i}" for p in ("cpz", "py", "rd") for i in range(3)}
    world.kcat(world.events, [event("plain-after")])
    named.add("plain-after")

    world.step_until(
        lambda: len(world.predictions()) >= len(named),
        "every event's prediction",
        world.predictor,
        world.learner,
    )
    assert set(world.predictions()) == named
    assert world.dead_letters() == {}

    world.kcat(world.feedback, [f"{i}|true" for i in sorted(named)], "-K|", "-z", "zstd")
    world.step_until(
        lambda: world.learner.handled_labels >= len(named), "every label", world.learner
    )
    assert world.learner.state is not None and world.learner.state.labels == len(named)


@pytest.mark.integration
@pytest.mark.parametrize("make_world", ["kafka-python", "confluent-kafka"], indirect=True)
def test_what_a_transactional_producer_aborted_is_never_predicted_nor_learned(
    make_world: Callable[..., World],
) -> None:
    """Two transactional producers (librdkafka's and kafka-python's) interleave a committed
    and an aborted transaction with plain records, and end on an abort marker.

    Consumers read uncommitted records unless exactly once was asked: every aborted event was
    predicted and its label learned. On confluent-kafka a partition whose last record is a
    transaction's marker was never read to its end: the learner's catch-up stalled for good."""
    from confluent_kafka import Producer

    world = make_world()

    def event(event_id: str) -> bytes:
        return json({"id": event_id, "features": {"amount": 2.5, "country": "DE"}}).encode()

    rdkafka = Producer({"bootstrap.servers": world.bootstrap, "transactional.id": uuid.uuid4().hex})
    python = KafkaProducer(bootstrap_servers=world.bootstrap, transactional_id=uuid.uuid4().hex)
    rdkafka.init_transactions(30)
    python.init_transactions()
    committed: set[str] = set()

    def both(topic: str, value: Callable[[str], bytes], keyed: bool) -> None:
        for aborter, committer in (("rd", "py"), ("py", "rd")):
            rdkafka.begin_transaction()
            python.begin_transaction()
            for i in range(4):
                for who in (aborter, committer):
                    name = f"{who}-{aborter}-{i}"
                    key = name.encode() if keyed else None
                    if who == "rd":
                        rdkafka.produce(topic, value(name), key)
                        rdkafka.flush(30)  # in the log before the abort
                    else:
                        python.send(topic, value(name), key=key)
                        python.flush()
                committed.add(f"{committer}-{aborter}-{i}")
                plain = f"plain-{aborter}-{i}"
                world.send(topic, value(plain), plain.encode() if keyed else None)
                committed.add(plain)
            for producer, who in ((rdkafka, "rd"), (python, "py")):
                if who == aborter:
                    producer.abort_transaction()
                else:
                    producer.commit_transaction()

    both(world.events, event, keyed=False)
    events = set(committed)
    world.step_until(
        lambda: len(world.predictions()) >= len(events),
        "every committed event's prediction",
        world.predictor,
        world.learner,
    )
    assert set(world.predictions()) == events

    committed.clear()
    both(world.feedback, lambda name: b"false" if name.startswith("py-rd") else b"true", True)
    world.step_until(
        lambda: world.learner.handled_labels >= len(events), "every label", world.learner
    )
    for _ in range(5):  # what was aborted would come after: nothing does
        world.learner.step(0.2)
    state = world.learner.state
    assert state is not None and state.labels == len(events)
    assert state.counts["unmatched"] == 0  # no aborted label was read
    assert world.dead_letters() == {}
    rdkafka.flush(10)
    python.close()


@pytest.mark.integration
def test_malformed_records_of_every_encoding_are_dead_lettered_with_what_to_change(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    good = json({"id": "good-1", "features": {"amount": 1.0, "country": "FR"}})
    nested = json({"amount": 1.0, "country": {"code": "FR"}})
    unknown = json({"order_id": "o-1", "amount": 1.0, "country": "FR"})
    world.kcat(world.events, ["not json at all", good, nested, unknown])
    no_type = json({"features": {"amount": 2.0, "country": "FR"}})
    world.kcat(
        world.events, [no_type], "-H", "ce_specversion=1.0", "-H", "ce_id=b1", "-H", "ce_source=/k"
    )
    foreign = {"type": "com.example.order", "source": "/sdk", "id": "sdk-1"}
    world.sdk(world.events, CloudEvent(foreign, {"features": {"amount": 303.0}}), structured=False)
    as_bytes = {"type": EVENT_TYPE, "source": "/sdk", "id": "sdk-2"}
    world.sdk(world.events, CloudEvent(as_bytes, b"\x00\x01"), structured=True)
    world.console_producer(world.feedback, ["true"])  # no key: whose label is it?
    headers = f"ce_specversion:1.0,ce_id:f1,ce_source:/console,ce_type:{FEEDBACK_TYPE}"
    world.console_producer(
        world.feedback, [f"{headers}\t{json({'label': True})}"], "parse.headers=true"
    )
    good_late = json({"id": "good-2", "features": {"amount": 4.0, "country": "DE"}})
    world.kcat(world.events, [good_late])

    world.step_until(
        lambda: len(world.dead_letters()) >= 8 and len(world.predictions()) >= 2,
        "the dead letters and the good events' predictions",
        world.predictor,
        world.learner,
    )
    assert set(world.predictions()) == {"good-1", "good-2"}  # poison never took a neighbour
    reasons = {value: reason for value, reason in world.dead_letters().items()}
    expected = {
        b"not json at all": ("not JSON", "send a JSON object of features"),
        nested.encode(): ("no features object and no ce_* headers", 'send {"id"'),
        unknown.encode(): (
            "unknown feature 'order_id'",
            f"streams.{world.stream.name}.encoding.id_field",
        ),
        no_type.encode(): (
            "missing required CloudEvents header(s): ce_type",
            "needs ce_specversion",
        ),
        b'{"features": {"amount": 303.0}}': (  # as the SDK writes JSON
            "unknown ce_type 'com.example.order'",
            f"send {EVENT_TYPE}",
        ),
        b"true": (
            'no "event_id" in the feedback and no Kafka key',
            "key the record by the event id",
        ),
        json({"label": True}).encode(): ("event_id: Field required", "key the record by it"),
    }
    for value, (what, change) in expected.items():
        assert what in reasons[value] and change in reasons[value], (value, reasons[value])
    structured = next(r for v, r in reasons.items() if b"sdk-2" in v)
    assert "data_base64" in structured and 'as a JSON object under "data"' in structured


@pytest.mark.integration
def test_a_stream_can_ask_for_plain_json_predictions_and_still_learns_from_them(
    make_world: Callable[..., World],
) -> None:
    world = make_world(predictions="json")
    for index in range(5):
        event = {"amount": float(index), "country": "FR"}
        world.send(world.events, orjson.dumps(event), key=f"e{index}".encode())
    world.step_until(
        lambda: len(world.predictions()) == 5, "the predictions", world.predictor, world.learner
    )
    for message in world.read(topics.predictions(world.stream.name)):
        assert message.headers == ()
        prediction = orjson.loads(message.value)
        assert message.key == prediction["event_id"].encode()
        assert prediction["model"] == world.stream.name and prediction["role"] == "champion"
    for index in range(5):
        world.send(world.feedback, b"true", key=f"e{index}".encode())
    world.step_until(lambda: world.learner.handled_labels >= 5, "the labels", world.learner)
    state = world.learner.state
    assert state is not None and state.labels == 5
    assert found_served(state) == 5  # the plain JSON predictions were read


def doc_examples() -> list[tuple[str, str, str, str]]:
    """(what, its words, language, code) of each example in docs/kafka.md, in order."""
    text = DOC.read_text()
    found: list[tuple[str, str, str, str]] = EXAMPLE.findall(text)
    assert len(found) == text.count("```") // 2, "an example in docs/kafka.md has no marker"
    return found


def to_the_end(world: World, code: str) -> str:
    """The console consumer's example, made to stop once it has read every prediction so far.

    As written it stops after 10 s without a record, and those 10 s include its JVM's start and
    its group's join: on a loaded machine it stopped before its first record (printing nothing)
    and on an idle one it idles 10 s after its last. Here nothing is published while it reads,
    so it stops at the count the topic holds, with the subprocess's timeout as the bound.
    """
    if "kafka-console-consumer" not in code:
        return code
    assert "--timeout-ms 10000" in code, code
    held = len(world.read(topics.predictions(world.stream.name)))
    return code.replace("--timeout-ms 10000", f"--max-messages {held} --timeout-ms 110000")


def run_example(world: World, language: str, code: str) -> str:
    """Runs an example as a reader would, in a Kafka distribution's directory; its output."""
    env = {**os.environ, "BOOTSTRAP": world.bootstrap, "STREAM": world.stream.name}
    env["PATH"] = f"{Path(world.kcat_path).parent}{os.pathsep}{env['PATH']}"
    command = {"sh": ["bash", "-euo", "pipefail", "-c"], "python": [sys.executable, "-c"]}
    done = subprocess.run(
        [*command[language], code], cwd=world.console, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, f"{code}\nfailed: {done.stderr.decode()[-2000:]}"
    return done.stdout.decode()


@pytest.mark.integration
def test_every_example_in_the_kafka_docs_runs_and_does_what_it_says(
    make_world: Callable[..., World],
) -> None:
    examples = doc_examples()
    settings = next(code for what, _, _, code in examples if what == "settings")
    declared = StreamConfig.model_validate(tomllib.loads(settings)["streams"][0])
    assert (declared.task, declared.model) == ("binary", "tree.HoeffdingTreeClassifier")
    assert set(declared.features) == set(FEATURES)
    world = make_world(**declared.encoding.model_dump())
    events: set[str] = set()
    labels: set[str] = set()

    def predicted(ids: set[str]) -> None:
        world.step_until(
            lambda: ids <= set(world.predictions()),
            f"the predictions of {sorted(ids)}",
            world.predictor,
            world.learner,
        )

    for what, words, language, code in examples:
        ids = set(words.split())
        if what == "settings":
            continue
        if what == "environment":
            given = run_example(world, language, f'{code}\necho "$BOOTSTRAP" "$STREAM"')
            assert len(given.split()) == 2, given
        elif what == "events":
            run_example(world, language, code)
            events |= ids
        elif what == "feedback":
            predicted(ids)  # a label is joined to the event it follows
            run_example(world, language, code)
            labels |= ids
        elif what == "predictions":
            predicted(ids)
            shown = run_example(world, language, to_the_end(world, code))
            assert all(event_id in shown for event_id in ids), (ids, shown[-2000:])
        elif what == "refused":
            run_example(world, language, code)
        elif what == "deadletter":
            world.step_until(
                functools.partial(world.dead_lettered, words),
                f"a dead letter saying {words!r}",
                world.predictor,
            )
            assert words in run_example(world, language, code)
        else:
            raise AssertionError(f"docs/kafka.md: an example of unknown kind {what!r}")
    predicted(events)
    assert set(world.predictions()) == events and labels == events
    times = {event_id: p.event_time for event_id, p in world.predictions().items()}
    assert times["kcat-2"] == moment("2026-01-02T03:04:05+00:00")  # created_at, the time field
    assert times["kcat-4"] == moment("2021-01-01T00:00:00+00:00")  # ce_time
    world.step_until(
        lambda: world.learner.handled_labels >= len(labels), "every label", world.learner
    )
    state = world.learner.state
    assert state is not None and state.labels == len(labels)
    assert state.counts["unmatched"] == 0 and state.counts["rejected_feedback"] == 0
