"""Bad records on real Kafka cost only themselves: each is dead-lettered with its reason, and the
good ones around it are predicted, monitored and learned as if it were not there.

Written the way other Kafka clients write them: kafka-python for null values and chosen record
timestamps, kcat for headers with a null value and header names that are not UTF-8. Each test
is a finding of the issue that asked for this (the predictor, monitor and learner failed their
step on a null value, and good events around it were never predicted; a label of the wrong
class cost the labels after it; any client could make predictors pass an event by).
"""

from __future__ import annotations

import base64
import math
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import orjson
import pytest
from kafka import KafkaProducer
from river import linear_model, preprocessing

from meander import topics
from meander.bus import Record
from meander.component import Component
from meander.config import Settings, StreamConfig
from meander.consumers.learner import Learner
from meander.consumers.monitor import Monitor
from meander.consumers.predictor import Predictor
from meander.events import DeadLetter, FeatureEvent, Feedback, Prediction, decode_batch, encode
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime
from meander.vocabulary import SERVED_SOURCE
from tests.integration.conftest import SIGNING_KEY, read_all

pytestmark = pytest.mark.integration

SPEC = "preprocessing.StandardScaler | linear_model.LogisticRegression"


@dataclass
class Site:
    runtime: Runtime
    stream: StreamConfig
    predictor: Predictor
    monitor: Monitor
    learner: Learner
    raw: KafkaProducer
    bootstrap: str

    @property
    def components(self) -> list[Component]:
        return [self.predictor, self.monitor, self.learner]

    def event(self, event_id: str, amount: float = 1.0) -> Record:
        payload = FeatureEvent(id=event_id, features={"amount": amount})
        return encode(topics.events(self.stream.name), payload, source="/test", event_id=event_id)

    def label(self, event_id: str, label: object) -> Record:
        payload = Feedback(event_id=event_id, label=label)  # type: ignore[arg-type]
        return encode(topics.feedback(self.stream.name), payload, source="/test")

    def send(self, record: Record, **changes: object) -> None:
        """``record`` as another client writes it: any field may be changed, to None too."""
        fields = {
            "value": record.value,
            "key": record.key,
            "headers": list(record.headers),
            "timestamp_ms": record.timestamp_ms,
        } | changes
        self.raw.send(record.topic, partition=0, **fields)  # type: ignore[arg-type]
        self.raw.flush()

    def kcat(self, topic: str, value: bytes, headers: Sequence[str]) -> None:
        """One record written by kcat: ``-H name=value``, or ``-H name`` for a null value."""
        command = ["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-p", "0"]
        subprocess.run(
            command + [arg for h in headers for arg in ("-H", h)], input=value, check=True
        )

    def run_until(self, done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Step every component (a step that raises fails the test) until ``done``."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            for component in self.components:
                component.step(0.05)

    def letters(self) -> list[DeadLetter]:
        found = decode_batch(read_all(self.runtime.bus, topics.DEADLETTER))[0]
        mine = (topics.events(self.stream.name), topics.feedback(self.stream.name))
        return [e.payload for e in found if isinstance(e.payload, DeadLetter)
                and e.payload.topic in mine]  # fmt: skip

    def champion_predictions(self) -> list[str]:
        found = decode_batch(read_all(self.runtime.bus, topics.predictions(self.stream.name)))[0]
        return [
            e.payload.event_id
            for e in found
            if isinstance(e.payload, Prediction) and e.payload.role == "champion"
        ]


@pytest.fixture
def site(request: pytest.FixtureRequest, kafka_bootstrap: str, redis_url: str) -> Iterator[Site]:
    """A stream on kafka-python's bus, or on the client a test asks for indirectly."""
    stream = StreamConfig(
        name=f"bad{uuid.uuid4().hex[:8]}",
        task="binary",
        features={"amount": {"type": "numeric", "minimum": 0}},
        model=SPEC,
        partitions=1,
        # the predictor keeps the first champion
        learning={"publish_every": 10**9, "publish_seconds": 10**6},
    )
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_signing_key=SIGNING_KEY,
        streams=[stream],
        kafka_client=getattr(request, "param", "kafka-python"),
    )
    with Runtime.open(settings) as runtime:
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        registry = Registry(runtime.store, stream.name, signer_for(settings))
        registry.promote(registry.register(model, spec=SPEC).version)
        raw = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        learner, predictor, monitor = (
            Learner(runtime, stream),
            Predictor(runtime, stream),
            Monitor(runtime, stream),
        )
        try:
            yield Site(runtime, stream, predictor, monitor, learner, raw, kafka_bootstrap)
        finally:
            for component in (predictor, monitor, learner):
                component.close()
            raw.close()


def test_null_values_null_headers_and_unreadable_records_cost_only_themselves(site: Site) -> None:
    events = topics.events(site.stream.name)
    good = [site.event(f"g{i}", float(i)) for i in range(6)]
    for record in good[:3]:
        site.send(record)
    site.send(good[0], value=None)  # a tombstone
    site.kcat(events, good[1].value, ["ce_specversion=1.0", "ce_id", "ce_source=/x"])
    # A header name not in UTF-8 is read with replacement (as the Java client does); with no
    # CloudEvents headers beside it, the value is read as plain JSON: an event, served again.
    site.kcat(events, good[2].value, ["k\udcff=1"])
    for record in good[3:]:
        site.send(record)

    site.run_until(lambda: site.predictor.handled >= 9, "the predictor to handle every record")
    site.run_until(lambda: site.monitor.window.events >= 9, "the monitor to see every record")

    assert sorted(site.champion_predictions()) == ["g0", "g1", "g2", "g2", "g3", "g4", "g5"]
    letters = site.letters()
    assert [(d.component, d.offset) for d in letters] == [("predictor", o) for o in (3, 4)]
    reasons = [d.reason for d in letters]
    assert reasons[0].startswith("the record's value is null")
    assert "'ce_id' has a null value" in reasons[1]
    assert (letters[0].value_b64, letters[1].headers_b64[1]) == (None, ("ce_id", None))
    assert site.monitor.window.violations == 2

    labels = [site.label(f"g{i}", i % 2 == 0) for i in range(6)]
    for record in labels:
        site.send(record)
    site.run_until(lambda: site.learner.handled_labels >= 6, "the learner to take every label")
    assert site.learner.state is not None and site.learner.state.labels == 6


def test_records_too_big_to_dead_letter_whole_cost_only_themselves(site: Site) -> None:
    """A dead letter keeps the key, the headers, the value and the reason, base64-encoded: each
    of these records made one over the topic's limit (1.2-1.4 MB of 1 MB), the predictor's step
    raised MessageTooLarge for good, and no event after it was predicted."""
    event = site.event("bad")
    site.send(site.event("g0"))
    site.send(event, key=b"k" * 600_000, value=b"y" * 300_000)
    site.send(event, headers=[*event.headers, ("junk", b"z" * 900_000)], value=b"nope")
    site.send(event, headers=[*event.headers, *[("j", b"")] * 150_000], value=b"nope")
    unknown = {"id": "bad", "features": {"a" * 700_000: 1.0}}  # the reason quoted its name
    site.send(event, value=orjson.dumps(unknown), headers=[])
    site.send(site.event("g1"))

    site.run_until(lambda: site.predictor.handled >= 6, "the predictor to handle every record")

    assert sorted(site.champion_predictions()) == ["g0", "g1"]
    letters = site.letters()
    assert [(d.offset, d.truncated) for d in letters] == [(o, True) for o in (1, 2, 3, 4)]
    assert base64.b64decode(letters[0].key_b64 or "").startswith(b"kkkk")
    kept = [(name, base64.b64encode(raw).decode()) for name, raw in event.headers if raw]
    assert letters[1].headers_b64[: len(kept)] == kept
    assert letters[3].reason.startswith("unknown feature 'aaaa") and len(letters[3].reason) < 1_100


def test_a_number_too_large_to_learn_from_is_dead_lettered_and_the_model_keeps_answering(
    site: Site,
) -> None:
    """1e308 is a finite JSON number: its label made the champion's scaler's variance infinite,
    and from then on it answered NaN probabilities for every event (found by hand through the
    service); a monitor's detector that saw it never worked again."""
    site.send(site.event("g0", 1.0))
    site.send(site.event("huge", 1e308))
    site.send(site.event("g1", 2.0))
    site.run_until(lambda: site.predictor.handled >= 3, "the predictor to handle every record")
    site.run_until(lambda: site.monitor.window.events >= 3, "the monitor to see every record")

    assert sorted(site.champion_predictions()) == ["g0", "g1"]
    (letter,) = site.letters()
    assert letter.reason.startswith("feature 'amount' = 1e+308 is beyond +-1e+100: ")
    assert site.monitor.window.violations == 1
    for event_id, label in (("g0", False), ("huge", True), ("g1", True)):
        site.send(site.label(event_id, label))
    site.run_until(lambda: site.learner.handled_labels >= 2, "the learner to take every label")

    state = site.learner.state
    # The label of the refused event waits for an event that will never be learned: for the
    # stream's label_window.hold_seconds, then it is dead-lettered.
    assert state is not None and state.labels == 2 and len(state.join.held) == 1
    answer = state.models[state.champion].predict_proba_one({"amount": 3.0})
    assert all(math.isfinite(p) for p in answer.values()), answer


def test_labels_sent_before_their_events_wait_for_them_across_a_restart(site: Site) -> None:
    """A labeller faster than the events' producer (two producers, no order between them):
    each label read before its event was dead-lettered, and none was learned."""
    for i in range(20):
        site.send(site.label(f"e{i}", i % 3 == 0))
    learner = site.learner

    def held() -> int:
        return 0 if learner.state is None else len(learner.state.join.held)

    site.run_until(lambda: held() == 20, "the learner to hold every label")
    learner.close()  # checkpoints the held labels with the offsets past them
    learner = site.learner = Learner(site.runtime, site.stream)
    for i in range(20):
        site.send(site.event(f"e{i}", float(i)))
    site.run_until(lambda: learner.handled_labels >= 20, "the learner to learn every label")

    state = learner.state
    assert state is not None and state.labels == 20 and not state.join.held
    assert len({(where[2], where[3]) for where in state.recent}) == 20  # each label once
    assert not site.letters() and not state.counts["unmatched"]
    learner.close()


@pytest.mark.parametrize("site", ["confluent-kafka"], indirect=True)
def test_a_header_name_confluent_kafka_cannot_decode_costs_only_its_record(site: Site) -> None:
    """confluent-kafka decodes header names as UTF-8: on any other it raised out of consume on
    every step (SystemError from a UnicodeDecodeError), and no record after it was read."""
    events = topics.events(site.stream.name)
    site.send(site.event("g0"))
    site.kcat(events, site.event("bad").value, ["k\udcff=1"])
    site.send(site.event("g1"))

    site.run_until(lambda: site.predictor.handled >= 3, "the predictor to handle every record")
    site.run_until(lambda: site.monitor.window.events >= 3, "the monitor to see every record")

    assert sorted(site.champion_predictions()) == ["g0", "g1"]
    (letter,) = site.letters()
    assert letter.offset == 1
    assert letter.reason.startswith("the Kafka client cannot read this record: a header name")
    site.send(site.label("g0", True))
    site.send(site.label("g1", False))
    site.run_until(lambda: site.learner.handled_labels >= 2, "the learner to take every label")
    assert site.learner.state is not None and site.learner.state.labels == 2


def test_a_label_of_no_class_of_the_stream_costs_only_itself(site: Site) -> None:
    events = [site.event(f"e{i}", float(i % 10)) for i in range(41)]
    for record in events:
        site.send(record)
    site.run_until(lambda: site.predictor.handled >= 41, "the events to be predicted")
    labels = [site.label(f"e{i}", i % 3 == 0) for i in range(40)]
    labels.insert(17, site.label("e40", "maybe"))  # binary: false or true
    for record in labels:
        site.send(record)

    site.run_until(lambda: site.learner.handled_labels >= 41, "the learner to take every label")

    assert site.learner.state is not None and site.learner.state.labels == 40
    [letter] = [d for d in site.letters() if d.component == "learner"]
    assert letter.offset == 17
    assert letter.reason == "label 'maybe' is not one of the stream's classes: False, True"


def test_only_the_services_own_mark_makes_a_predictor_pass_an_event_by(site: Site) -> None:
    forged = FeatureEvent(id="forged", features={"amount": 3.0})
    record = encode(
        topics.events(site.stream.name), forged, source=SERVED_SOURCE, event_id=forged.id
    )
    copied = ("meander-served", b"00" * 32)  # a mark that is not the service's
    site.send(record)
    site.send(site.event("forged-too"), headers=[*record.headers[:2], *record.headers[2:], copied])
    site.run_until(lambda: site.predictor.handled >= 2, "both events to be handled")

    assert sorted(site.champion_predictions()) == ["forged", "forged-too"]
    assert site.predictor.served_elsewhere == 0


def test_times_out_of_the_window_are_dead_lettered_and_expire_no_waiting_event(
    site: Site,
) -> None:
    waiting = site.event("waiting")
    site.send(waiting)
    ahead = site.event("ahead")  # 50 min: the broker takes it (under its hour), we do not
    site.send(ahead, timestamp_ms=time.time_ns() // 1_000_000 + 50 * 60_000)
    future = FeatureEvent(id="2099", features={"amount": 1.0}, time="2099-01-01T00:00:00Z")
    site.send(encode(topics.events(site.stream.name), future, source="/t"), timestamp_ms=None)
    site.run_until(lambda: site.predictor.handled >= 3, "the predictor to handle every record")

    assert site.champion_predictions() == ["waiting"]
    reasons = {d.offset: d.reason for d in site.letters()}
    assert reasons[1].startswith("timestamp ") and "ahead of the clock" in reasons[1]
    assert reasons[2].startswith("time 2099-01-01T00:00:00Z is 7")

    # The learner's label window stayed where the good event put it: its label still joins.
    site.send(site.label("waiting", True))
    site.run_until(lambda: site.learner.handled_labels >= 1, "the learner to take the label")
    assert site.learner.state is not None and site.learner.state.labels == 1
