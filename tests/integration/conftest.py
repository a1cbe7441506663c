"""Fixtures of the integration area: settings on the real servers, config files, child
processes that are always reaped, and reading a topic to its end.

Components run here the way they run in production: as separate processes started from a TOML
config, with the connections and the signing key in ``MEANDER_*`` environment variables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from river import linear_model

from meander.bus import Bus, Message, TopicPartition
from meander.config import Settings, StreamConfig
from meander.infra.process import free_port
from meander.infra.redis import LocalRedis
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

SIGNING_KEY = "integration-signing-key-0123456789"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def stream_name() -> str:
    """A stream name no earlier run used, so topics, registry and checkpoints start empty."""
    return f"it{uuid.uuid4().hex[:10]}"


@pytest.fixture
def real_settings(kafka_bootstrap: str, redis_url: str) -> Callable[..., Settings]:
    """Settings on the session's Kafka and Redis for the given stream configurations."""

    def make(*streams: StreamConfig, **overrides: Any) -> Settings:
        defaults = {"kafka_bootstrap": kafka_bootstrap, "redis_url": redis_url}
        return Settings(
            **(defaults | overrides), model_signing_key=SIGNING_KEY, streams=list(streams)
        )

    return make


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A Redis server of the test's own (to fill, stop or wipe), stopped after it."""
    store = LocalRedis(port=free_port(), data_dir=tmp_path / "redis")
    store.start(timeout=30)
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def child_env(kafka_bootstrap: str, redis_url: str) -> dict[str, str]:
    """The environment of a component process: connections, the signing key, a fixed hash
    seed (River models iterate over sets, so their learning can depend on it), and no metrics
    port (several components run on this host; the deploy tests scrape theirs)."""
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith("MEANDER_")}
    return inherited | {
        "MEANDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MEANDER_REDIS_URL": redis_url,
        "MEANDER_MODEL_SIGNING_KEY": SIGNING_KEY,
        "MEANDER_METRICS_PORT": "0",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Writes the stream configurations as a TOML config file, as a user would; ``sections``
    adds other top-level tables (``producer``, ``notifier``...)."""

    def write(
        *streams: StreamConfig, name: str = "meander.toml", **sections: Mapping[str, Any]
    ) -> Path:
        dumped = [s.model_dump(mode="json", exclude_defaults=True) for s in streams]
        for stream, dump in zip(streams, dumped, strict=True):
            dump |= {"name": stream.name, "task": stream.task}  # required, even when default
        path = tmp_path / name
        path.write_text(toml({**sections, "streams": dumped}))
        return path

    return write


@dataclass
class Child:
    """A process the test started, with its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as an operator would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} (pid {self.pid}) did not stop within {timeout:g} s of SIGTERM:\n"
                f"{self.output()[-3000:]}"
            ) from None


@pytest.fixture
def spawn(tmp_path: Path, child_env: dict[str, str]) -> Iterator[Callable[..., Child]]:
    """Starts processes; whatever is still running at teardown is killed and reaped."""
    children: list[Child] = []

    def start(name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        log = tmp_path / f"{name}-{len(children)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                list(argv),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=child_env | dict(env or {}),
                cwd=Path(__file__).parents[2],
            )
        child = Child(name, process, log)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait(30)


@pytest.fixture
def run_component(spawn: Callable[..., Child]) -> Callable[[str, Path], Child]:
    """Starts ``meander run COMPONENT --config PATH`` in its own process, as a deployment does."""

    def start(component: str, config: Path) -> Child:
        command = [str(VENV_BIN / "meander"), "run", component, "--config", str(config)]
        return spawn(component, command)

    return start


@pytest.fixture(name="read_all")
def read_all_fixture() -> Callable[..., list[Message]]:
    """:func:`read_all`, for tests (helpers of a conftest are not importable)."""
    return read_all


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    """:func:`wait_for`, for tests."""
    return wait_for


def read_all(bus: Bus, topic: str, *, settle: float = 30.0) -> list[Message]:
    """Every message of ``topic`` up to its end at call time, partition by partition."""
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    consumer = bus.assign(partitions)
    try:
        ends = consumer.end_offsets(partitions)
        found: list[Message] = []
        deadline = time.monotonic() + settle
        while any(consumer.position(p) < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {settle:g} s")
            found.extend(consumer.consume(5_000, 0.2))
        return found
    finally:
        consumer.close()


def wait_for(
    condition: Callable[[], Any], what: str, *, timeout: float, children: Sequence[Child] = ()
) -> Any:
    """Polls ``condition`` until it returns something true; fails naming ``what`` and showing
    the output of any child that died meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        dead = [c for c in children if c.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name} ---\n{c.output()[-3000:]}" for c in children)
            cause = f"{dead[0].name} exited" if dead else f"timed out after {timeout:g} s"
            raise AssertionError(f"waiting for {what}: {cause}\n{logs}")
        time.sleep(0.05)


def toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A TOML document of plain JSON-like data: scalars, lists of scalars, tables and arrays
    of tables (what a settings dump holds)."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append(f"\n[{path}]\n{toml(value, path)}")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            tables += [f"\n[[{path}]]\n{toml(item, path)}" for item in value]
        else:
            lines.append(f"{json.dumps(key)} = {json.dumps(value)}")
    return "\n".join(lines) + "".join(tables) + "\n"


def promote_trained_champion(runtime: Runtime, stream: str) -> None:
    """A trained champion for a ``synthetic("sea")`` stream, so that predictors serve from
    their first step."""
    model = linear_model.LogisticRegression()
    for sample in synthetic("sea").samples(200):
        model.learn_one(sample.features, sample.label)
    registry = Registry(runtime.store, stream, signer_for(runtime.settings))
    registry.promote(registry.register(model, spec="linear_model.LogisticRegression").version)


def logs_of(children: Sequence[Child]) -> str:
    """The end of each child's output, to explain a failure."""
    return "\n".join(f"--- {c.name} ---\n{c.output()[-2000:]}" for c in children)
