"""``meander run NAME`` builds the right components, one per stream where it applies."""

from __future__ import annotations

import gc
import logging
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meander.component import Component, drain
from meander.config import Settings
from meander.consumers import COMPONENTS, assembly
from meander.consumers.assembly import build
from meander.consumers.learner.learner import Learner
from meander.consumers.monitor.monitor import Monitor
from meander.consumers.notifier.notifier import Notifier
from meander.consumers.predictor.predictor import Predictor
from meander.consumers.trainer.trainer import Trainer
from meander.exceptions import ConfigError
from meander.producers.runner import Producer
from meander.runtime import Runtime
from meander.telemetry import serve_metrics

if TYPE_CHECKING:
    from tests.consumers.conftest import MakeRuntime, MakeStream


@pytest.fixture
def runtime(make_stream: MakeStream, make_runtime: MakeRuntime) -> Runtime:
    # The producer publishes the default source (Agrawal) to the first stream.
    return make_runtime(make_stream("agrawal", source="agrawal"), make_stream("sea"))


@pytest.fixture
def built() -> Iterator[list[Component]]:
    """Components a test built; closed afterwards."""
    components: list[Component] = []
    yield components
    for component in components:
        component.close()


def kinds(components: Sequence[Component]) -> list[tuple[type, str | None]]:
    return [(type(c), getattr(getattr(c, "stream", None), "name", None)) for c in components]


def test_every_component_once_per_stream_in_start_up_order(
    runtime: Runtime, built: list[Component]
) -> None:
    built += build(list(reversed(COMPONENTS)), runtime)

    assert kinds(built) == [
        (Learner, "agrawal"),
        (Learner, "sea"),
        (Predictor, "agrawal"),
        (Predictor, "sea"),
        (Trainer, "agrawal"),
        (Trainer, "sea"),
        (Monitor, "agrawal"),
        (Monitor, "sea"),
        (Notifier, None),
        (Producer, "agrawal"),
    ]


@pytest.mark.parametrize("name", [n for n in COMPONENTS if n not in ("notifier", "producer")])
def test_a_stream_component_alone_is_built_for_every_stream(
    name: str, runtime: Runtime, built: list[Component]
) -> None:
    built += build([name], runtime)

    assert [c.name for c in built] == [name, name]
    assert [c.stream.name for c in built] == ["agrawal", "sea"]  # type: ignore[attr-defined]


def test_without_streams_only_the_shared_components_are_built(
    make_runtime: MakeRuntime, built: list[Component]
) -> None:
    built += build(["learner", "predictor", "trainer", "monitor", "notifier"], make_runtime())

    assert kinds(built) == [(Notifier, None)]


def test_a_producer_alone_ends_the_process_with_its_source_and_beside_others_idles(
    runtime: Runtime, built: list[Component]
) -> None:
    stop = threading.Event()
    [alone] = build(["producer"], runtime, stop=stop)
    built.append(alone)
    beside = build(["producer", "notifier"], runtime, stop=stop)
    built += beside

    assert isinstance(alone, Producer) and alone.on_finished is not None
    alone.on_finished()
    assert stop.is_set()
    assert [type(c) for c in beside] == [Notifier, Producer]
    assert beside[1].on_finished is None  # type: ignore[attr-defined]


def test_run_builds_on_the_configured_backends_and_runs_until_stopped(
    make_stream: MakeStream, monkeypatch: pytest.MonkeyPatch, logging_kept: None
) -> None:
    name = f"run{uuid.uuid4().hex[:8]}"  # the embedded backends are the process's own
    settings = Settings(streams=[make_stream(name)], metrics_port=0)
    stop = threading.Event()
    ran: dict[str, Any] = {}

    def run_in_threads(components: list[Component], event: threading.Event) -> None:
        ran["components"], ran["stop"] = kinds(components), event
        ran["collecting while running"] = gc.isenabled()
        for component in components:
            component.close()

    def build(*args: Any, **kwargs: Any) -> list[Component]:
        ran["collecting while building"] = gc.isenabled()
        return assembly_build(*args, **kwargs)

    assembly_build = assembly.build
    monkeypatch.setattr(assembly, "build", build)
    monkeypatch.setattr(assembly, "stop_on_signals", lambda: stop)
    monkeypatch.setattr(assembly, "run_in_threads", run_in_threads)

    handler = _Kept()
    said = handler.records
    assembly.log.addHandler(handler)
    try:
        assembly.run(["trainer", "predictor"], settings)
    finally:
        assembly.log.removeHandler(handler)

    assert ran == {
        "components": [(Predictor, name), (Trainer, name)],
        "stop": stop,
        # Building (mostly imports) runs without the cyclic collector; the components with it.
        "collecting while building": False,
        "collecting while running": True,
    }
    # Once built, it says so with the CPU spent so far (mostly imports: a restart's cost).
    built = [r for r in said if getattr(r, "built", False)]
    assert len(built) == 1
    assert built[0].cpu_seconds > 0  # type: ignore[attr-defined]
    assert built[0].getMessage().startswith("trainer, predictor: built")


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_component_process_imports_neither_the_embedded_store_nor_file_readers() -> None:
    # fakeredis is the embedded store's, pandas and pyarrow replay files: a `meander run` on
    # Redis with a synthetic source needs none of them (about a CPU-second of each restart).
    code = (
        "import sys, meander.cli.app, meander.consumers.assembly, meander.runtime, "
        "meander.consumers.notifier.notifier, meander.producers.runner; "
        "print(sorted({'fakeredis', 'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert found.stdout.strip() == b"[]", found.stderr[-2000:]


@pytest.fixture
def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_serves_every_component_on_one_metrics_port(
    make_stream: MakeStream, monkeypatch: pytest.MonkeyPatch, logging_kept: None, port: int
) -> None:
    name = f"run{uuid.uuid4().hex[:8]}"
    settings = Settings(streams=[make_stream(name)], metrics_port=port)
    scraped: list[str] = []

    def run_in_threads(components: list[Component], _stop: threading.Event) -> None:
        drain(components)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            scraped.append(answer.read().decode())
        for component in components:
            component.close()

    monkeypatch.setattr(assembly, "stop_on_signals", threading.Event)
    monkeypatch.setattr(assembly, "run_in_threads", run_in_threads)
    try:
        assembly.run(["learner", "predictor"], settings)
    finally:
        server = serve_metrics(port)
        assert server is not None
        server.close()

    samples = [s for f in text_string_to_metric_families(scraped[0]) for s in f.samples]
    streams = {(s.labels.get("component"), s.labels.get("stream")) for s in samples}
    assert {("learner", name), ("predictor", name)} <= streams


def test_a_metrics_port_in_use_stops_run_with_the_setting_named(
    make_stream: MakeStream, logging_kept: None, port: int
) -> None:
    settings = Settings(streams=[make_stream("busy")], metrics_port=port)
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        with pytest.raises(ConfigError, match=f"metrics_port {port} is already in use"):
            assembly.run(["predictor"], settings)
