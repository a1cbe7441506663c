"""Property-based fuzzing of every route of the real service (uvicorn) on real Kafka and Redis.

One service for the whole suite. Each hypothesis example sends a handful of requests, good ones
among hostile and broken ones (NaN and Infinity, numbers beyond a double, lone surrogates and
invalid UTF-8, deep nesting, wrong types and nulls, long strings, empty bodies, wrong content
types, times far ahead and before 1970, duplicate ids, labels of no class, unknown streams,
versions and subscriptions, malformed queries, headers and uploads), and checks:

- no answer is a 5xx, and the connection is never reset;
- every 4xx is in the one shape (``{"detail": [{"loc", "msg", "type"}]}``), its message short;
- a good request gets its 2xx, whatever came before it; a bad one its 4xx;
- the service stays ready (``/readyz``) after every example;
- at the end, every event and label the service accepted is on Kafka as many times as it was
  accepted, and nothing of a refused request is.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from river import linear_model, tree

from meander import topics
from meander.bus import TopicPartition
from meander.config import Settings, StreamConfig
from meander.events import FeatureEvent, Feedback, decode_batch
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.runtime import Runtime
from tests.adversarial import (
    HOSTILE_TOKENS,
    OTHER_THREADS_USE_RANDOM,
    event_body,
    features,
    hostile_values,
    json_text,
    times_refused,
)
from tests.integration.conftest import SIGNING_KEY
from tests.services.conftest import RunningServer, documented

pytestmark = [
    pytest.mark.integration,
    # A failing example is shown whole, however large: what it was matters more than its size.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    OTHER_THREADS_USE_RANDOM,
]

EXAMPLES = 260  # hypothesis examples; each sends MIN_REQUESTS..MAX_REQUESTS requests
MIN_REQUESTS, MAX_REQUESTS = 12, 28
MAX_BATCH, MAX_BODY = 20, 64_000
JSON = "application/json"


@dataclass
class Request:
    """One request, and what it must get: ``ok`` statuses, or any 4xx when ``refused``."""

    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None
    ok: frozenset[int] = frozenset()
    refused: bool = False
    events: list[str] = field(default_factory=list)  # ids published when it is accepted
    labels: list[str] = field(default_factory=list)  # event ids of labels published
    subscription: bool = False  # its answer is a new subscription


@dataclass
class World:
    url: str
    binary: str
    regression: str
    runtime: Runtime
    client: httpx.Client
    pool: ThreadPoolExecutor
    serial: int = 0
    subscriptions: list[str] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    labelled: Counter[str] = field(default_factory=Counter)
    refused: set[str] = field(default_factory=set)
    requests: int = 0
    examples: int = 0
    refusals: set[tuple[int, str]] = field(default_factory=set)
    failure: str = ""

    def new_id(self) -> str:
        self.serial += 1
        return f"h-{self.serial}"


# -- good bodies ----------------------------------------------------------------------------------


SEEDS = st.integers(0, 2**32)
EVENT_BODIES = SEEDS.map(lambda seed: event_body(random.Random(seed)))
FEATURES = SEEDS.map(lambda seed: features(random.Random(seed)))


# What makes an event bad, and always bad.
EVENT_BREAKS: dict[str, Any] = {
    "no features": lambda e, h: e.pop("features"),
    "unknown feature": lambda e, h: e["features"].update(colour="red"),
    "negative amount": lambda e, h: e["features"].update(amount=-1),
    "amount a string": lambda e, h: e["features"].update(amount="12"),
    "amount null": lambda e, h: e["features"].update(amount=None),
    "amount NaN": lambda e, h: e["features"].update(amount=float("nan")),
    "amount infinite": lambda e, h: e["features"].update(amount=float("-inf")),
    "amount beyond a double": lambda e, h: e["features"].update(amount=HOSTILE_TOKENS[3]),
    "country not a category": lambda e, h: e["features"].update(country="DE"),
    "vip a string": lambda e, h: e["features"].update(vip="yes"),
    "id empty": lambda e, h: e.update(id=""),
    "id too long": lambda e, h: e.update(id="x" * 201),
    "id a number": lambda e, h: e.update(id=5),
    "entity too long": lambda e, h: e.update(entity="y" * 201),
    "extra field": lambda e, h: e.update(extra=1),
    "time refused": lambda e, h: e.update(time=h),
    "time garbage": lambda e, h: e.update(time="next tuesday"),
    "lone surrogate": lambda e, h: e.update(entity=HOSTILE_TOKENS[5]),
    "invalid UTF-8": lambda e, h: e.update(entity=HOSTILE_TOKENS[7]),
    "deep nesting": lambda e, h: e["features"].update(amount=HOSTILE_TOKENS[9]),
}
LABEL_BREAKS = ["maybe", 2, 0.5, None, [True], {"a": 1}, "", HOSTILE_TOKENS[0]]


# -- requests -------------------------------------------------------------------------------------

Intent = Callable[["World"], Request]
"""A drawn request, made concrete in the world it is sent to (its ids, streams, subscriptions):
every random choice is drawn first, so that drawing never depends on what earlier requests did."""


def publish_events(world: World, bodies: list[dict[str, Any]], ndjson: bool, ok: bool) -> Request:
    """``bodies`` as one publish request; an event without an id gets a new one."""
    bodies = copy.deepcopy(bodies)
    ids = [body.setdefault("id", world.new_id()) for body in bodies]
    if ndjson:
        payload, kind = b"\n".join(json_text(b) for b in bodies), "application/x-ndjson"
    else:
        payload, kind = json_text(bodies if len(bodies) > 1 else bodies[0]), JSON
    path = f"/v1/streams/{world.binary}/events"
    if ok:
        return Request("POST", path, payload, kind, ok=frozenset({202}), events=ids)
    world.refused.update(i for i in ids if isinstance(i, str))
    return Request("POST", path, payload, kind, refused=True)


def good_events(
    world: World, bodies: list[dict[str, Any]], ndjson: bool, again: int | None
) -> Request:
    if again is not None and world.accepted:  # an id sent before: a duplicate is fine
        bodies = copy.deepcopy(bodies)
        bodies[0]["id"] = sorted(world.accepted)[again % len(world.accepted)]
    return publish_events(world, bodies, ndjson, ok=True)


def good_labels(world: World, labels: list[Any], regression: bool) -> Request:
    stream = world.regression if regression else world.binary
    body = [{"event_id": world.new_id(), "label": label} for label in labels]
    ids = [] if regression else [str(b["event_id"]) for b in body]
    path = f"/v1/streams/{stream}/feedback"
    return Request("POST", path, json_text(body), ok=frozenset({202}), labels=ids)


def good_predict(world: World, body: dict[str, Any]) -> Request:
    body = {**body, "id": world.new_id()}
    path = f"/v1/streams/{world.binary}/predict"
    return Request("POST", path, json_text(body), ok=frozenset({200}), events=[body["id"]])


def good_subscription(world: World, severity: str, style: str) -> Request:
    body = {
        "url": f"http://127.0.0.1:9/{world.new_id()}",
        "filters": {"streams": [world.binary], "min_severity": severity},
        "format": style,
    }
    return Request(
        "POST", "/v1/subscriptions", json_text(body), ok=frozenset({201}), subscription=True
    )


def good_change(world: World, pick: int, change: dict[str, Any]) -> Request:
    if not world.subscriptions:
        return good_subscription(world, "info", "cloudevents")
    sid = world.subscriptions[pick % len(world.subscriptions)]
    return Request("PATCH", f"/v1/subscriptions/{sid}", json_text(change), ok=frozenset({200}))


def good_upload(world: World, rows: list[dict[str, Any]]) -> Request:
    text = io.StringIO()
    writer = csv.DictWriter(text, ["amount", "country", "vip"])
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                "amount": row["amount"],
                "country": row.get("country") or "",
                "vip": row.get("vip", ""),
            }
        )
    files = {"file": ("rows.csv", text.getvalue().encode(), "text/csv")}
    path = f"/v1/streams/{world.binary}/batch"
    return Request(
        "POST", path, None, None, files=files, params={"format": "json"}, ok=frozenset({200})
    )


READS = [
    ("/v1/streams", {200}),
    ("/v1/streams/{s}/models", {200}),
    ("/v1/streams/{s}/models/1", {200}),
    ("/v1/streams/{s}/models/1/lineage", {200}),
    ("/v1/streams/{s}/schema", {200}),
    ("/v1/streams/{s}/profile", {200, 404}),  # 404 until a monitor profiled the stream
    ("/v1/streams/{s}/overview", {200}),
    ("/v1/streams/{s}/decisions", {200}),
    ("/v1/streams/{s}/predictions/h-1", {200, 404}),  # 404 until the index has it
    ("/v1/alerts", {200}),
    ("/v1/subscriptions", {200}),
    ("/healthz", {200}),
    ("/metrics", {200}),
    ("/dashboard", {200}),
]


def good_read(world: World, path: str, statuses: set[int]) -> Request:
    params = {"limit": "5", "severity": "warning", "since": "2024-01-01T00:00:00Z"}
    return Request(
        "GET",
        path.format(s=world.binary),
        None,
        None,
        params=params if path == "/v1/alerts" else {},
        ok=frozenset(statuses),
    )


@st.composite
def good_request(draw: st.DrawFn) -> Intent:
    which = draw(
        st.sampled_from(
            [
                "events",
                "events",
                "feedback",
                "predict",
                "read",
                "subscribe",
                "change",
                "upload",
                "regression",
            ]
        )
    )
    if which == "events":
        bodies = draw(st.lists(EVENT_BODIES, min_size=1, max_size=6))
        again = draw(st.none() | st.integers(0, 10**6))
        return partial(good_events, bodies=bodies, ndjson=draw(st.booleans()), again=again)
    if which == "feedback":
        labels = draw(st.lists(st.sampled_from([True, False, 0, 1]), min_size=1, max_size=5))
        return partial(good_labels, labels=labels, regression=False)
    if which == "regression":
        labels = draw(
            st.lists(st.floats(-1e9, 1e9) | st.integers(-(10**9), 10**9), min_size=1, max_size=5)
        )
        return partial(good_labels, labels=labels, regression=True)
    if which == "predict":
        return partial(good_predict, body=draw(EVENT_BODIES))
    if which == "subscribe":
        severity = draw(st.sampled_from(["info", "warning", "critical"]))
        return partial(
            good_subscription,
            severity=severity,
            style=draw(st.sampled_from(["cloudevents", "alertmanager"])),
        )
    if which == "change":
        change = draw(
            st.sampled_from(
                [
                    {"description": "on call"},
                    {"rotate_secret": True},
                    {"filters": {"min_severity": "critical"}},
                ]
            )
        )
        return partial(good_change, pick=draw(st.integers(0, 10**6)), change=change)
    if which == "upload":
        return partial(good_upload, rows=draw(st.lists(FEATURES, min_size=1, max_size=5)))
    path, statuses = draw(st.sampled_from(READS))
    return partial(good_read, path=path, statuses=statuses)


def bad_events(
    world: World, bodies: list[dict[str, Any]], broken: int, name: str, when: str, ndjson: bool
) -> Request:
    bodies = copy.deepcopy(bodies)
    EVENT_BREAKS[name](bodies[broken % len(bodies)], when)
    return publish_events(world, bodies, ndjson, ok=False)


def bad_label(world: World, label: Any, observed_at: str | None) -> Request:
    wrong = {"event_id": world.new_id(), "label": label}
    if observed_at is not None:
        wrong = {"event_id": world.new_id(), "label": True, "observed_at": observed_at}
    body = [{"event_id": world.new_id(), "label": True}, wrong]
    return Request("POST", f"/v1/streams/{world.binary}/feedback", json_text(body), refused=True)


def bad_predict(world: World, body: dict[str, Any], name: str, when: str) -> Request:
    body = copy.deepcopy(body)
    EVENT_BREAKS[name](body, when)
    return Request("POST", f"/v1/streams/{world.binary}/predict", json_text(body), refused=True)


def any_body(
    world: World, route: tuple[str, str], body: bytes, kind: str | None, refused: bool
) -> Request:
    method, path = route
    where = path.format(s=world.binary, sub=world.new_id())
    return Request(method, where, body, kind, refused=refused)


def bad_query(world: World, path: str, params: dict[str, str]) -> Request:
    return Request("GET", path.format(s=world.binary), None, None, params=params, refused=True)


def bad_path(world: World, method: str, template: str, name: str) -> Request:
    return Request(method, template.format(s=world.binary, n=name), b"{}")


def fixed(world: World, request: Request) -> Request:
    return dataclasses.replace(
        request, path=request.path.format(s=world.binary), params=dict(request.params)
    )


@st.composite
def bad_request(draw: st.DrawFn) -> Intent:
    which = draw(
        st.sampled_from(
            [
                "event",
                "event",
                "event",
                "label",
                "label",
                "predict",
                "body",
                "json",
                "query",
                "path",
                "subscription",
                "model",
                "auth",
                "size",
                "upload",
                "cursor",
            ]
        )
    )
    if which == "event":
        bodies = draw(st.lists(EVENT_BODIES, min_size=1, max_size=4))
        name = draw(st.sampled_from(sorted(EVENT_BREAKS)))
        return partial(
            bad_events,
            bodies=bodies,
            broken=draw(st.integers(0, 3)),
            name=name,
            when=draw(times_refused()),
            ndjson=draw(st.booleans()),
        )
    if which == "label":
        observed_at = draw(st.none() | times_refused())
        return partial(
            bad_label, label=draw(st.sampled_from(LABEL_BREAKS)), observed_at=observed_at
        )
    if which == "predict":
        name = draw(st.sampled_from(sorted(EVENT_BREAKS)))
        return partial(bad_predict, body=draw(EVENT_BODIES), name=name, when=draw(times_refused()))
    if which == "body":  # anything at all, on any route that reads a body: no 5xx
        hostile = draw(HOSTILE)
        route = draw(st.sampled_from(BODY_ROUTES))
        return partial(
            any_body, route=route, body=json_text(hostile), kind=draw(CONTENT_TYPES), refused=False
        )
    if which == "json":  # JSON no writer should produce
        token = draw(st.sampled_from(HOSTILE_TOKENS[:10]))
        body = json_text(
            {
                "features": {"amount": token},
                "reason": token,
                "url": token,
                "label": token,
                "event_id": "e",
            }
        )
        return partial(
            any_body, route=draw(st.sampled_from(BODY_ROUTES)), body=body, kind=JSON, refused=True
        )
    if which == "query":
        path, params = draw(st.sampled_from(BAD_QUERIES))
        return partial(bad_query, path=path, params=params)
    if which == "path":
        hostile = draw(HOSTILE)
        method, template = draw(st.sampled_from(BAD_PATHS))
        return partial(
            bad_path,
            method=method,
            template=template,
            name=quote(str(hostile)[:300] or "x", safe=""),
        )
    if which == "subscription":
        hostile = draw(HOSTILE)
        url = draw(st.sampled_from(["ftp://x", "http://", "not a url", "http://[::1", "a" * 3000]))
        body = {"url": url, "filters": hostile, "format": hostile, "secret": "short"}
        return partial(
            fixed, request=Request("POST", "/v1/subscriptions", json_text(body), refused=True)
        )
    if which == "model":
        method, path, body = draw(st.sampled_from(BAD_MODEL_CALLS))
        return partial(fixed, request=Request(method, path, json_text(body), refused=True))
    if which == "auth":
        hostile = draw(HOSTILE)
        key = "mnd_" + "".join(c for c in str(hostile)[:50] if "!" <= c <= "~")
        return partial(
            fixed,
            request=Request(
                "GET", "/v1/streams", None, None, headers={"X-API-Key": key}, refused=True
            ),
        )
    if which == "size":
        if draw(st.booleans()):
            many = [{"features": {"amount": 1}} for _ in range(MAX_BATCH + 1)]
            return partial(publish_events, bodies=many, ndjson=False, ok=False)
        huge = b'{"features": {"amount": 1}, "entity": "' + b"z" * MAX_BODY + b'"}'
        return partial(fixed, request=Request("POST", "/v1/streams/{s}/events", huge, refused=True))
    if which == "upload":
        hostile = draw(HOSTILE)
        content = draw(st.sampled_from([*BAD_UPLOADS, json_text(hostile)]))
        files = {"file": ("rows.csv", content, "text/csv")}
        request = Request(
            "POST",
            "/v1/streams/{s}/batch",
            None,
            None,
            files=files,
            params={"errors": "reject"},
            refused=True,
        )
        return partial(fixed, request=request)
    cursor = draw(st.sampled_from(["garbage", "0:x", "99:1", "-1:0", "0:1,0:2"]))
    request = Request(
        "GET",
        "/v1/streams/{s}/predictions/live",
        None,
        None,
        headers={"Last-Event-ID": cursor},
        refused=True,
    )
    return partial(fixed, request=request)


HOSTILE = hostile_values()
BODY_ROUTES = [
    ("POST", "/v1/streams/{s}/events"),
    ("POST", "/v1/streams/{s}/feedback"),
    ("POST", "/v1/streams/{s}/predict"),
    ("POST", "/v1/subscriptions"),
    ("PATCH", "/v1/subscriptions/{sub}"),
    ("POST", "/v1/streams/{s}/models/1/promote"),
    ("POST", "/v1/streams/{s}/rollback"),
]
CONTENT_TYPES = st.sampled_from(
    [
        JSON,
        "application/x-ndjson",
        "text/plain",
        None,
        "application/json; charset=latin-1",
        "multipart/form-data",
        "application/xml",
    ]
)
BAD_QUERIES = [
    ("/v1/alerts", {"limit": "many"}),
    ("/v1/alerts", {"limit": "0"}),
    ("/v1/alerts", {"since": "yesterday"}),
    ("/v1/alerts", {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}),
    ("/v1/alerts", {"severity": "apocalyptic"}),
    ("/v1/alerts", {"kind": "mood"}),
    ("/v1/alerts", {"stream": "no/such"}),
    ("/v1/streams/{s}/decisions", {"limit": "-1"}),
    ("/v1/streams/{s}/decisions", {"kind": "celebrated"}),
    ("/v1/streams/{s}/predictions/live", {"model": "zero"}),
]
BAD_PATHS = [
    ("GET", "/v1/streams/{n}/models"),
    ("POST", "/v1/streams/{n}/events"),
    ("GET", "/v1/streams/{s}/models/{n}"),
    ("GET", "/v1/subscriptions/{n}"),
    ("DELETE", "/v1/subscriptions/{n}"),
    ("GET", "/v1/streams/{s}/predictions/{n}"),
    ("PUT", "/v1/streams/{n}/events"),
    ("GET", "/v1/{n}"),
    ("POST", "/v1/streams/{s}/models/{n}/promote"),
    ("GET", "/dashboard/{n}"),
]
BAD_MODEL_CALLS = [
    ("POST", "/v1/streams/{s}/models/1/promote", {"reason": "again"}),  # the champion: 409
    ("POST", "/v1/streams/{s}/models/99/promote", {"reason": "who"}),
    ("POST", "/v1/streams/{s}/models/0/promote", {"reason": "zero"}),
    ("POST", "/v1/streams/{s}/rollback", {"reason": "back"}),  # nothing to go back to
    ("POST", "/v1/streams/{s}/rollback", {"reason": "", "to_version": -3}),
    ("POST", "/v1/streams/{s}/rollback", {"reason": "x", "to_version": 10**30}),
]
BAD_UPLOADS = [
    b"",
    b"\xff\xfe\x00garbage",
    b"amount\n-1\n",
    b"colour\nred\n",
    b"PAR1nonsense",
]


# -- the suite ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, redis_url: str) -> Iterator[World]:
    suffix = uuid.uuid4().hex[:8]
    binary = StreamConfig(
        name=f"http{suffix}",
        task="binary",
        features={
            "amount": {"type": "numeric", "minimum": 0, "maximum": 1e6},
            "country": {"type": "categorical", "categories": ["NL", "FR"], "required": False},
            "vip": {"type": "boolean", "required": False},
        },
        model="tree.HoeffdingTreeClassifier",
        partitions=1,
    )
    regression = StreamConfig(
        name=f"reg{suffix}", task="regression", features={"x": "numeric"}, partitions=1
    )
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url.rsplit("/", 1)[0] + "/12",  # subscriptions of its own
        model_signing_key=SIGNING_KEY,
        streams=[binary, regression],
        service={
            "anonymous_scopes": ["publish", "read", "admin"],
            "allow_private_webhooks": True,
            "max_batch_events": MAX_BATCH,
            "max_body_bytes": MAX_BODY,
        },
    )
    runtime = Runtime.open(settings)
    model = tree.HoeffdingTreeClassifier(grace_period=20)
    for i in range(100):
        model.learn_one({"amount": float(i * 100), "country": ("NL", "FR")[i % 2]}, i % 3 == 0)
    for stream, champion in ((binary, model), (regression, linear_model.LinearRegression())):
        registry = Registry(runtime.store, stream.name, signer_for(settings))
        registry.promote(registry.register(champion, spec=stream.model).version)
    server = RunningServer(settings)
    client = httpx.Client(base_url=server.url, timeout=60)
    # The first publish opens the backends: not part of the fuzzing.
    assert (
        client.post(
            f"/v1/streams/{binary.name}/events", json={"id": "warm", "features": {"amount": 1}}
        ).status_code
        == 202
    )
    pool = ThreadPoolExecutor(4, thread_name_prefix="fuzz client")
    built = World(server.url, binary.name, regression.name, runtime, client, pool)
    built.accepted["warm"] += 1
    try:
        yield built
    finally:
        pool.shutdown()
        client.close()
        server.stop()
        runtime.close()


def send(world: World, request: Request) -> httpx.Response:
    headers = dict(request.headers)
    if request.content_type is not None:
        headers["content-type"] = request.content_type
    return world.client.request(
        request.method,
        request.path,
        content=request.body if request.files is None else None,
        files=request.files,
        headers=headers,
        params=request.params,
    )


@given(st.lists(good_request() | bad_request(), min_size=MIN_REQUESTS, max_size=MAX_REQUESTS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # the service outlives an example: no replays
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error_or_costs_another(world: World, drawn: list[Intent]) -> None:
    if world.failure:  # hypothesis runs a failing example again to show it: report the first
        pytest.fail(world.failure, pytrace=False)
    try:
        # Made in order, sent four at a time: a request that fails must cost none of those
        # beside it either. Each answer is checked against what its request must get.
        made = [make(world) for make in drawn]
        for request, answer in zip(made, world.pool.map(partial(send, world), made), strict=True):
            check(world, request, answer)
        ready = world.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
        world.examples += 1
    except Exception as error:
        world.failure = f"{type(error).__name__}: {error}"
        raise


def check(world: World, request: Request, answer: httpx.Response) -> None:
    world.requests += 1
    where = f"{request.method} {request.path} -> {answer.status_code}: {answer.text[:300]}"
    assert answer.status_code < 500, where
    if 400 <= answer.status_code < 500:
        detail = answer.json()["detail"]
        world.refusals.update((answer.status_code, p["type"]) for p in detail)
        assert detail and all(set(p) == {"loc", "msg", "type"} for p in detail), where
        assert all(isinstance(p["loc"], list) and len(p["msg"]) <= 300 for p in detail), where
    if request.ok:
        assert answer.status_code in request.ok, where
    if request.refused:
        assert 400 <= answer.status_code < 500, where
    if answer.status_code < 300:
        world.accepted.update(request.events)
        world.labelled.update(request.labels)
        if request.subscription:
            world.subscriptions.append(answer.json()["id"])


def published(world: World, topic: str) -> list[Any]:
    bus = world.runtime.bus
    partition = TopicPartition(topic, 0)
    with bus.assign([partition]) as reader:
        end = reader.end_offsets([partition])[partition]
        found = []
        while reader.position(partition) < end:
            found += reader.consume(10_000, 0.5)
    return [e.payload for e in decode_batch(found)[0]]


def test_what_was_accepted_is_on_kafka_and_nothing_refused_is(
    world: World, fuzzed: dict[str, int]
) -> None:
    events = Counter(
        p.id for p in published(world, topics.events(world.binary)) if isinstance(p, FeatureEvent)
    )
    labels = Counter(
        p.event_id
        for p in published(world, topics.feedback(world.binary))
        if isinstance(p, Feedback)
    )
    fuzzed["HTTP requests"] = world.requests
    assert world.examples >= EXAMPLES and world.requests >= EXAMPLES * MIN_REQUESTS
    assert events == world.accepted
    assert labels == world.labelled
    assert not (world.refused & set(events))
    # Every refusal the fuzzing met is in the docs' table (422 also takes pydantic's kinds).
    assert {r for r in world.refusals if r[0] != 422} <= documented()
