"""The records the Kafka fuzz suite writes, and what must become of each (an oracle).

Hypothesis draws *intents*: good records in bulk (their details drawn from a seed, which costs
little), and bad ones one by one, each with what breaks it: a null value or header, a header
name that is not UTF-8, JSON no writer should produce, a field of the wrong type, a time far
ahead, a label of no class, a model event no component can follow, ... :func:`materialize`
turns them into :class:`Case` records in order, and keeps in the :class:`Oracle` what the
components must have done as if the bad records never came: the events waiting for a label,
the model and metrics the learner must end with.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from meander import topics
from meander.clock import TimeWindow
from meander.config import StreamConfig
from meander.events import Alert, FeatureEvent, Feedback, ModelEvent, Prediction
from meander.models.evaluation import Prequential
from meander.models.inference import clean, predict_one
from meander.schema import Schema
from tests.adversarial import (
    HOSTILE_TOKENS,
    event_body,
    features,
    hostile_values,
    json_text,
    times_refused,
)

__all__ = [
    "ALERTS",
    "EVENTS",
    "FEEDBACK",
    "MODELS",
    "PREDICTIONS",
    "Case",
    "Oracle",
    "intents",
    "materialize",
]

EVENTS, FEEDBACK, PREDICTIONS = "events", "feedback", "predictions"
MODELS, ALERTS = topics.MODELS, topics.ALERTS
AHEAD_MS = 50 * 60_000  # a timestamp the broker takes (under its hour) and meander does not
Headers = list[tuple[str, bytes]]


@dataclass
class Case:
    """One record to write, and what must become of it."""

    topic: str  # EVENTS, FEEDBACK or PREDICTIONS of the stream, or a shared topic
    value: bytes | None
    headers: Headers = field(default_factory=list)
    key: bytes | None = None
    timestamp_ms: int | None = None
    kcat: list[str] | None = None  # written by kcat with these -H arguments (null values...)
    bad: str | None = None  # the component that dead-letters it; None for a good record
    reason: str | None = None  # the class of its reason, when only one is right
    event: tuple[str, dict[str, Any]] | None = None  # a good event: its id and features


@dataclass
class Oracle:
    """What the components must have done, as if the bad records never came."""

    stream: StreamConfig
    # The model the predictor serves: the registry's champion when an example starts (the
    # learner publishes a revision of it after each decision it reads on meander.models).
    champion: Any
    model: Any  # what the learner's champion must be after the good labels
    metrics: Prequential  # what the learner's metrics of the champion must be
    max_bytes: int
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # events without a label
    labelled: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # every good event id, in order
    labels: int = 0
    serial: int = 0
    served: dict[str, Any] = field(default_factory=dict)  # the answer each pending event got

    def new_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def add(self, event_id: str, x: dict[str, Any]) -> None:
        self.seen.append(event_id)
        if event_id not in self.pending:  # a copy while one waits joins nothing
            self.pending[event_id] = x
            self.served[event_id] = predict_one(self.champion, x, self.stream.task)

    def learn(self, event_id: str, label: Any) -> None:
        x = self.pending.pop(event_id)
        prediction, proba = self.served.pop(event_id)
        self.metrics.update(label, prediction, proba)
        self.model.learn_one(x, label)
        self.labels += 1
        self.labelled.append(event_id)

    def accepts(self, value: bytes) -> FeatureEvent | None:
        """The event ``value`` holds if the stream takes it (contract, size, schema, time)."""
        try:
            event = FeatureEvent.model_validate_json(value)
        except ValueError:
            return None
        if len(value) > self.max_bytes or Schema(self.stream).violation(event.features):
            return None
        return None if TimeWindow(300).time_problem(event.time) else event


def cloud(kind: str, payload: Any, event_id: str | None = None) -> tuple[bytes, Headers]:
    """A binary-mode CloudEvent of type ``kind`` whose data is ``payload`` (any JSON, or raw)."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", (event_id or uuid.uuid4().hex).encode()),
        ("ce_source", b"/fuzz"),
        ("ce_type", kind.encode()),
        ("content-type", b"application/json"),
    ]
    return json_text(payload), headers


# -- good records, in bulk ----------------------------------------------------------------------


def good_events(oracle: Oracle, count: int, seed: int, again: bool) -> list[Case]:
    rng, cases = random.Random(seed), []
    for index in range(count):
        repeat = again and index == 0 and oracle.seen  # an id seen before: a duplicate
        event_id = rng.choice(oracle.seen) if repeat else oracle.new_id("e")
        body = {"id": event_id, **event_body(rng)}
        x = clean(body["features"])
        oracle.add(event_id, x)
        value, headers = cloud(FeatureEvent.type, body, event_id)
        cases.append(Case(EVENTS, value, headers, key=event_id.encode(), event=(event_id, x)))
    return cases


def good_labels(oracle: Oracle, count: int, seed: int) -> list[Case]:
    rng, cases = random.Random(seed), []
    for _ in range(count):
        label = rng.choice([True, False, 0, 1])
        if not oracle.pending:
            cases.append(label_case(oracle.new_id("unknown"), label, bad=True))
            continue
        event_id = rng.choice(list(oracle.pending))
        oracle.learn(event_id, label)
        cases.append(label_case(event_id, label))
    return cases


def label_case(event_id: str, label: Any, *, bad: bool = False, **extra: Any) -> Case:
    value, headers = cloud(Feedback.type, {"event_id": event_id, "label": label, **extra})
    if bad:
        return Case(
            FEEDBACK, value, headers, event_id.encode(), bad="learner", reason="wrong_label"
        )
    return Case(FEEDBACK, value, headers, event_id.encode())


def relabel(oracle: Oracle, pick: int) -> Case:
    """A second label for an event: learned only if a copy of the event came since."""
    if not oracle.labelled:
        return label_case(oracle.new_id("unknown"), True, bad=True)
    event_id = oracle.labelled[pick % len(oracle.labelled)]
    if event_id in oracle.pending:
        oracle.learn(event_id, False)
        return label_case(event_id, False)
    return label_case(event_id, False, bad=True)


# -- bad records, one by one ----------------------------------------------------------------------

# How a record breaks, on any topic: (the change, the class of the reason).
TRANSPORT: dict[str, str] = {
    "null value": "undecodable",
    "empty value": "undecodable",
    "null header": "undecodable",
    "unreadable header name": "undecodable",
    "not JSON": "undecodable",
    "no ce headers": "undecodable",  # on S.events, S.feedback, S.predictions: plain JSON, read
    "text content-type": "undecodable",
    "timestamp ahead": "time",
    "timestamp before 1970": "time",
}
PLAIN = "no ce headers"
EVENT_DATA: dict[str, tuple[Any, str | None]] = {  # (where in the event and what, the class)
    "no features": ((), "contract"),
    "extra field": (("extra", 1), "contract"),
    "empty id": (("id", ""), "contract"),
    "id too long": (("id", "x" * 201), "contract"),
    "entity too long": (("entity", "y" * 201), "contract"),
    "time garbage": (("time", "next tuesday"), "contract"),
    "unknown feature": (("features", "colour", "red"), "schema"),
    "negative amount": (("features", "amount", -1.5), "schema"),
    "amount a string": (("features", "amount", "12"), "schema"),
    "amount null": (("features", "amount", None), "schema"),
    "amount infinite": (("features", "amount", float("inf")), "schema"),
    "amount NaN": (("features", "amount", float("nan")), "schema"),
    "country not a category": (("features", "country", "DE"), "schema"),
    "vip not a boolean": (("features", "vip", "yes"), "schema"),
    "amount beyond a double": (("features", "amount", HOSTILE_TOKENS[4]), None),
}
LABEL_DATA: dict[str, tuple[Any, str]] = {
    "maybe": ("maybe", "wrong_label"),
    "two": (2, "wrong_label"),
    "a float": (0.5, "wrong_label"),
    "null label": (None, "contract"),
    "array label": ([True], "contract"),
    "NaN label": (float("nan"), "wrong_label"),
}


def transport(case: Case, change: str) -> Case:
    """``case`` broken in how it travels rather than in what it says."""
    case.reason = TRANSPORT[change]
    if change == "null value":
        case.value = None
    elif change == "empty value":
        case.value = b""
    elif change == "null header":
        kind = next(v for n, v in case.headers if n == "ce_type").decode()
        case.kcat = ["ce_specversion=1.0", "ce_id", "ce_source=/fuzz", f"ce_type={kind}"]
    elif change == "unreadable header name":
        case.kcat = ["ce_specversion=1.0", "meander\udcff=1"]  # \udcff: the byte 0xff
    elif change == "not JSON":
        case.value = b"\xff\x00{not json"
    elif change == "no ce headers":
        case.headers = [("x-trace", b"1")]
    elif change == "text content-type":
        case.headers = [*case.headers[:4], ("content-type", b"text/plain")]
    elif change == "timestamp ahead":
        case.timestamp_ms = time.time_ns() // 1_000_000 + AHEAD_MS
    else:
        case.timestamp_ms = -5
    return case


def bad_event(oracle: Oracle, change: str, seed: int, hostile: Any, moment: str) -> Case:
    event_id = oracle.new_id("x")
    body: dict[str, Any] = {"id": event_id, "features": features(random.Random(seed))}
    case = Case(EVENTS, b"", key=event_id.encode(), bad="predictor")
    if change in TRANSPORT:
        case.value, case.headers = cloud(FeatureEvent.type, body, event_id)
        transport(case, change)
        if change == PLAIN:  # the event as plain JSON, as any client may send it: served
            x = clean(body["features"])
            oracle.add(event_id, x)
            case.bad, case.reason, case.event = None, None, (event_id, x)
        return case
    if change == "feedback type":
        case.value, case.headers = cloud(Feedback.type, {"event_id": event_id, "label": True})
        case.reason = "contract"
        return case
    if change == "too large":
        body["entity"], case.reason = "x" * oracle.max_bytes, "too_large"
    elif change == "time refused":
        body["time"], case.reason = moment, "time"
    elif change == "hostile amount":
        body["features"]["amount"] = hostile
    elif change == "hostile field":
        body[("id", "time", "entity", "features")[len(repr(hostile)) % 4]] = hostile
    else:
        where, case.reason = EVENT_DATA[change]
        if not where:
            del body["features"]
        elif len(where) == 2:
            body[where[0]] = where[1]
        else:
            body["features"][where[1]] = where[2]
    case.value, case.headers = cloud(FeatureEvent.type, body, event_id)
    if case.reason is None and (accepted := oracle.accepts(case.value)) is not None:
        x = clean(accepted.features)  # a hostile draw that makes a good event after all
        oracle.add(accepted.id, x)
        case.bad, case.event = None, (accepted.id, x)
    return case


def bad_label(oracle: Oracle, change: str, pick: int, hostile: Any, moment: str) -> Case:
    waiting = list(oracle.pending)
    event_id = waiting[pick % len(waiting)] if waiting else oracle.new_id("unknown")
    body: dict[str, Any] = {"event_id": event_id, "label": True}
    case = Case(FEEDBACK, b"", key=event_id.encode(), bad="learner")
    if change in TRANSPORT:
        case.value, case.headers = cloud(Feedback.type, body)
        transport(case, change)
        if change == PLAIN:  # the label as plain JSON: learned when its event waits for one
            if waiting:
                oracle.learn(event_id, True)
                case.bad, case.reason = None, None
            else:
                case.reason = "wrong_label"
        return case
    if change == "event type":
        body, case.reason = {"features": {"amount": 1}}, "contract"
    elif change == "empty event id":
        body["event_id"], case.reason = "", "contract"
    elif change == "unknown event":
        body["event_id"], case.reason = oracle.new_id("unknown"), "wrong_label"
    elif change == "observed ahead":
        body["observed_at"], case.reason = moment, "time"
    elif change == "hostile label":
        body["label"] = hostile
        if type(hostile) in (bool, int) and hostile in (0, 1):  # as good a label as any
            if waiting:
                oracle.learn(event_id, hostile)
                case.bad = None
            else:
                case.reason = "wrong_label"
    else:
        body["label"], case.reason = LABEL_DATA[change]
    kind = FeatureEvent.type if change == "event type" else Feedback.type
    case.value, case.headers = cloud(kind, body)
    return case


def prediction_case(oracle: Oracle, how: str) -> Case:
    """A record on S.predictions: a good one for an event no label names (a ghost), or one
    the prediction index dead-letters."""
    event_id = oracle.new_id("ghost")
    body: dict[str, Any] = {
        "event_id": event_id,
        "model": oracle.stream.name,
        "version": 1,
        "prediction": True,
        "probabilities": {"True": 0.9, "False": 0.1},
        "latency_ms": 0.1,
    }
    case = Case(PREDICTIONS, b"", key=event_id.encode(), bad="prediction-index", reason="contract")
    changes = {
        "maybe": ("prediction", "maybe"),
        "nan probability": ("probabilities", {"True": float("nan")}),
        "probability above one": ("probabilities", {"True": 1.5}),
        "version 0": ("version", 0),
    }
    if how in changes:
        body[changes[how][0]] = changes[how][1]
    kind = Alert.type if how == "alert type" else Prediction.type
    case.value, case.headers = cloud(kind, alert_body(oracle) if how == "alert type" else body)
    if how == "ghost":
        case.bad = case.reason = None
    elif how in TRANSPORT:
        transport(case, how)
        if how == PLAIN:  # a prediction as plain JSON is read like any: a ghost
            case.bad = case.reason = None
    return case


def alert_body(oracle: Oracle) -> dict[str, Any]:
    return {
        "kind": "data_drift",
        "stream": oracle.stream.name,
        "severity": "warning",
        "statistic": "psi",
        "value": 0.4,
        "feature": "amount",
    }


def alert_case(oracle: Oracle, how: str, hostile: Any) -> Case:
    body = alert_body(oracle)
    case = Case(ALERTS, b"", bad="notifier", reason="contract")
    if how == "unknown kind":
        body["kind"] = "mood_swing"
    elif how == "hostile value":
        body["value"] = hostile
    kind = FeatureEvent.type if how == "event type" else Alert.type
    case.value, case.headers = cloud(kind, {"features": {}} if how == "event type" else body)
    if how == "good":
        case.bad = case.reason = None
    elif how in TRANSPORT:
        transport(case, how)
    elif how == "hostile value":
        try:  # whether a hostile draw breaks an alert is the contract's to say
            Alert.model_validate_json(case.value)
            case.bad = case.reason = None
        except ValueError:
            case.reason = None
    return case


def model_case(oracle: Oracle, how: str) -> Case:
    """A record on meander.models: one no component minds, or one that the notifier (it cannot
    be read), the learner (it cannot be followed) or the trainer (a retrain request it cannot
    answer) dead-letters."""
    stream = oracle.stream.name
    body: dict[str, Any] = {"action": "rejected", "stream": stream, "model": stream}
    body["version"] = 900 + oracle.serial  # never registered
    oracle.serial += 1
    case = Case(MODELS, b"")
    if how == "other stream":
        body.update(stream="elsewhere", action="challenger_trained")
    elif how == "stale retrain":
        body.update(action="retrain_requested", evidence={"replay": {}, "since_change": 0})
    elif how in ("challenger unknown", "promoted unknown"):
        body["action"] = "challenger_trained" if how == "challenger unknown" else "promoted"
        case.bad, case.reason = "learner", "contract"
    elif how.startswith("retrain "):
        ranges = {
            "bad ranges": {"0": ["a", 5]},
            "partition": {"7": [0, 1]},
            "past": {"0": [0, 10**9]},
        }
        evidence = {"replay": {"events": ranges[how.removeprefix("retrain ")]}}
        body.update(action="retrain_requested", version=1, evidence=evidence)
        case.bad, case.reason = "trainer", "contract"
    elif how == "unknown action":
        body["action"] = "celebrated"
        case.bad, case.reason = "notifier", "contract"
    case.value, case.headers = cloud(ModelEvent.type, body)
    if how in TRANSPORT:
        case.bad = "notifier"
        transport(case, how)
    return case


# -- intents ------------------------------------------------------------------------------------

Intent = tuple[str, tuple[Any, ...]]
SEEDS = st.integers(0, 2**32)
PICKS = st.integers(0, 10**6)
TIMES = times_refused()
EVENT_CHANGES = sorted([*TRANSPORT, *EVENT_DATA, "feedback type", "too large", "time refused"])
LABEL_CHANGES = sorted(
    [*TRANSPORT, *LABEL_DATA, "event type", "empty event id", "unknown event", "observed ahead"]
)
PREDICTION_CHANGES = [
    "maybe",
    "nan probability",
    "probability above one",
    "version 0",
    "alert type",
    "not JSON",
    "null value",
    "unreadable header name",
    "ghost",
    "ghost",
]
MODEL_CHANGES = [
    "not JSON",
    "null header",
    "unknown action",
    "challenger unknown",
    "promoted unknown",
    "retrain bad ranges",
    "retrain partition",
    "retrain past",
    "harmless",
    "stale retrain",
    "other stream",
]
ALERT_CHANGES = [
    "not JSON",
    "empty value",
    "unknown kind",
    "event type",
    "hostile value",
    "good",
    "good",
]

HOSTILE = hostile_values()
intents: st.SearchStrategy[Intent] = st.one_of(
    st.tuples(st.just("events"), st.tuples(st.integers(1, 8), SEEDS, st.booleans())),
    st.tuples(st.just("labels"), st.tuples(st.integers(1, 6), SEEDS)),
    st.tuples(st.just("relabel"), st.tuples(PICKS)),
    st.tuples(
        st.just("bad event"), st.tuples(st.sampled_from(EVENT_CHANGES), SEEDS, st.none(), TIMES)
    ),
    st.tuples(
        st.just("bad event"),
        st.tuples(st.sampled_from(["hostile amount", "hostile field"]), SEEDS, HOSTILE, st.none()),
    ),
    st.tuples(
        st.just("bad label"), st.tuples(st.sampled_from(LABEL_CHANGES), PICKS, st.none(), TIMES)
    ),
    st.tuples(st.just("bad label"), st.tuples(st.just("hostile label"), PICKS, HOSTILE, st.none())),
    st.tuples(st.just("prediction"), st.tuples(st.sampled_from(PREDICTION_CHANGES))),
    st.tuples(st.just("model"), st.tuples(st.sampled_from(MODEL_CHANGES))),
    st.tuples(st.just("alert"), st.tuples(st.sampled_from(ALERT_CHANGES), st.none())),
    st.tuples(st.just("alert"), st.tuples(st.just("hostile value"), HOSTILE)),
)

_EVENTS = {"events": good_events, "bad event": bad_event}
_REST = {
    "labels": good_labels,
    "relabel": relabel,
    "bad label": bad_label,
    "prediction": prediction_case,
    "model": model_case,
    "alert": alert_case,
}


def materialize(drawn: list[Intent], oracle: Oracle) -> list[Case]:
    """The records of an example, events first (labels may name any of them), in order."""
    cases: list[Case] = []
    for table in (_EVENTS, _REST):
        for kind, params in drawn:
            if kind in table:
                made = table[kind](oracle, *params)
                cases += made if isinstance(made, list) else [made]
    return cases
