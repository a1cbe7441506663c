"""Session fixtures for the real backends: one Kafka broker and one Redis server per test process.

``make test`` runs two pytest-xdist workers, each with its own broker and Redis, and hands each
test module whole to one of them (``--dist loadfile``): the tests of a module run in their order
and share its module fixtures, and a module that restarts servers of its own does it on one
worker.

They use the servers named by MEANDER_KAFKA_BOOTSTRAP / MEANDER_REDIS_URL when set, and
otherwise start their own on free loopback ports and stop them at the end. When a server cannot
be had, integration tests skip on a laptop but fail under CI=true: CI never passes by skipping.

The embedded-backend factories (``make_runtime``, ``make_stream``, ``publish_samples``,
``read_topic``) serve unit tests of every area: each runtime gets its own in-process broker and
its own fakeredis server, so tests never see each other's topics, registries or checkpoints.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fakeredis
import orjson
import pytest
import redis

from meander import topics
from meander.bus import MemoryBroker, MemoryBus, Message, Record, TopicPartition
from meander.config import Settings, StreamConfig
from meander.events import Envelope, ModelEvent, decode_batch
from meander.infra.kafka import LocalKafka
from meander.infra.kafka_tools import ConsoleTools
from meander.infra.process import InfraError
from meander.infra.redis import LocalRedis
from meander.producers.labels import Publisher
from meander.producers.sample import Sample
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from meander.store import memory_store, redis_store

IN_CI = os.environ.get("CI", "").lower() == "true"
# Servers a developer already runs (make infra-up's exports) are taken out of the environment:
# Settings prefer the environment to their arguments, so every test that builds settings of its
# own (embedded, a dead port, a Redis of its own) would be handed these instead.
RUNNING = {
    name: os.environ.pop(name, "") for name in ("MEANDER_KAFKA_BOOTSTRAP", "MEANDER_REDIS_URL")
}
FUZZED = pytest.StashKey[dict[str, int]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FUZZED] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker, hand the fuzz counts to the controller, which prints them."""
    if (output := getattr(session.config, "workeroutput", None)) is not None:
        output["fuzzed"] = session.config.stash.get(FUZZED, {})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Add up what each pytest-xdist worker fuzzed (``make test`` runs two workers)."""
    fuzzed = node.config.stash[FUZZED]
    for what, count in getattr(node, "workeroutput", {}).get("fuzzed", {}).items():
        fuzzed[what] = fuzzed.get(what, 0) + count


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """How many cases the fuzz suites ran, at the end of every run that ran them."""
    if fuzzed := config.stash.get(FUZZED, {}):
        cases = ", ".join(f"{count:,} {what}" for what, count in sorted(fuzzed.items()))
        terminalreporter.write_line(f"fuzzing: {cases} ({sum(fuzzed.values()):,} cases)")


@pytest.fixture(scope="session")
def fuzzed(request: pytest.FixtureRequest) -> dict[str, int]:
    """Where a fuzz suite counts what it ran, for the summary at the end of the run."""
    return request.config.stash[FUZZED]


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is needed for integration tests and could not be started: {error}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker."""
    if bootstrap := RUNNING["MEANDER_KAFKA_BOOTSTRAP"]:
        yield bootstrap
        return
    broker = LocalKafka()
    try:
        broker.start(timeout=120)
    except InfraError as error:
        _unavailable("Apache Kafka", error)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis server."""
    if url := RUNNING["MEANDER_REDIS_URL"]:
        yield url
        return
    server = LocalRedis()
    try:
        server.start(timeout=30)
    except InfraError as error:
        _unavailable("Redis", error)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Iterator[redis.Redis[bytes]]:
    """A fresh embedded store, then a client of the session's real Redis: tests of what meander
    relies on from its store run on both."""
    if request.param == "memory":
        client = memory_store(fakeredis.FakeServer())
    else:
        client = redis_store(request.getfixturevalue("redis_url"))
    yield client
    client.close()


@pytest.fixture(scope="session")
def console_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``bin/kafka-console-producer.sh`` and ``-consumer.sh``, as a Kafka
    distribution has them, running Kafka's own tools from their jars (cached in .cache/)."""
    try:
        tools = ConsoleTools()
        tools.ensure_jars()
    except InfraError as error:
        _unavailable("Kafka's console tools", error)
    home = tmp_path_factory.mktemp("kafka-distribution")
    tools.scripts(home)
    return home


@pytest.fixture(scope="session")
def kcat() -> str:
    """The kcat executable (Debian's package kcat; `make system-deps` installs it)."""
    path = shutil.which("kcat")
    if path is None:
        _unavailable("kcat", FileNotFoundError("apt-get install kcat, or make system-deps"))
    assert path is not None
    return path


@dataclass
class Published:
    """What :func:`publish_samples` put on the bus."""

    samples: list[Sample]
    events: list[Record]
    feedback: list[Record]


MakeRuntime = Callable[..., Runtime]
MakeStream = Callable[..., StreamConfig]
PublishSamples = Callable[..., Published]
ReadTopic = Callable[[Runtime, str], list[Envelope]]


@contextmanager
def embedded_runtimes() -> Iterator[MakeRuntime]:
    """What :func:`make_runtime` gives, for fixtures of a wider scope: each runtime made is
    closed on leaving."""
    opened: list[Runtime] = []

    def make(*streams: StreamConfig, **settings: Any) -> Runtime:
        bus = MemoryBus(MemoryBroker())
        bus.create_topics(topics.layout(streams))
        runtime = Runtime(
            Settings(streams=list(streams), **settings), bus, memory_store(fakeredis.FakeServer())
        )
        opened.append(runtime)
        return runtime

    try:
        yield make
    finally:
        for runtime in opened:
            runtime.close()


@pytest.fixture
def make_runtime() -> Iterator[MakeRuntime]:
    """``make_runtime(*streams)``: settings with those streams, a fresh bus and store, and
    every topic the streams need."""
    with embedded_runtimes() as make:
        yield make


@pytest.fixture
def make_stream() -> MakeStream:
    """``make_stream(name, source="sea", **options)``: the config of a synthetic stream, with a
    Hoeffding tree unless ``model`` says otherwise."""

    def make(name: str = "sea", source: str = "sea", **options: Any) -> StreamConfig:
        options.setdefault("model", "tree.HoeffdingTreeClassifier")
        return synthetic(source).stream_config(name, **options)

    return make


@pytest.fixture
def publish_samples() -> PublishSamples:
    """``publish_samples(runtime, stream, count, source="sea", ...)``: publish ``count`` seeded
    samples of a synthetic stream as events, then their feedback (``labels=False`` keeps it)."""

    def publish(
        runtime: Runtime,
        stream: StreamConfig,
        count: int,
        *,
        source: str = "sea",
        drift_every: int = 1_000_000,
        seed: int = 7,
        start: int = 0,
        labels: bool = True,
    ) -> Published:
        samples = list(synthetic(source, drift_every=drift_every, seed=seed).samples(start + count))
        samples = samples[start:]
        events, feedback = Publisher(stream.name).push(samples)
        runtime.bus.publish(events)
        if labels:
            runtime.bus.publish(feedback)
        return Published(samples, events, feedback)

    return publish


def every_message(runtime: Runtime, topic: str) -> list[Message]:
    """Every message on ``topic`` so far, partition by partition in offset order."""
    partitions = [TopicPartition(topic, p) for p in range(runtime.bus.partitions(topic))]
    with runtime.bus.assign(partitions) as consumer:
        messages = []
        while batch := consumer.consume(10_000, 0.0):
            messages += batch
    messages.sort(key=lambda m: (m.partition, m.offset))
    return messages


def model_events(runtime: Runtime) -> list[ModelEvent]:
    """Every decision on ``meander.models`` so far."""
    envelopes = decode_batch(every_message(runtime, topics.MODELS))[0]
    return [e.payload for e in envelopes if isinstance(e.payload, ModelEvent)]


def event_number(event_id: str | None) -> int:
    """Which event of a synthetic stream ``event_id`` names (``stagger-1500``: 1500)."""
    return int((event_id or "").rsplit("-", 1)[1])


@pytest.fixture
def read_topic() -> ReadTopic:
    """``read_topic(runtime, topic)``: every event on ``topic`` so far, decoded, partition by
    partition in offset order."""

    def read(runtime: Runtime, topic: str) -> list[Envelope]:
        envelopes, rejected = decode_batch(every_message(runtime, topic))
        assert not rejected, f"undecodable messages on {topic}: {rejected[:3]}"
        return envelopes

    return read


# --- a real webhook endpoint on loopback, for the notifier's and the service's tests ---------

HOOK_BOUND = 60.0  # seconds a webhook endpoint waits for deliveries before the test fails


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def data(self) -> Any:
        return orjson.loads(self.body)["data"]


@dataclass
class HookServer:
    """A webhook endpoint that answers with ``statuses`` in turn, then with the last one."""

    statuses: list[int]
    hold: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, HOOK_BOUND)
            return list(self.received)

    def answer(self, request: Received) -> int:
        with self.arrived:
            self.received.append(request)
            self.arrived.notify_all()
            status = self.statuses[min(len(self.received), len(self.statuses)) - 1]
        self.hold.wait(HOOK_BOUND)
        return status


@pytest.fixture
def hook_server() -> Iterator[Callable[..., HookServer]]:
    """A factory of running webhook endpoints; ``held=True`` keeps requests waiting."""
    running: list[tuple[HookServer, ThreadingHTTPServer, threading.Thread]] = []

    def start(statuses: list[int] | None = None, *, held: bool = False) -> HookServer:
        hook = HookServer(statuses or [200])
        if not held:
            hook.hold.set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.send_response(hook.answer(Received(self.path, headers, body)))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        hook.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((hook, server, thread))
        return hook

    yield start
    for hook, server, thread in running:
        hook.hold.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def logging_kept() -> Iterator[None]:
    """``run`` configures the process's logging: put it back as it was."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
