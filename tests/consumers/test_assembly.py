"""``meander run NAME`` builds the right components, one per stream where it applies."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from consumers import COMPONENTS, assembly
from consumers.assembly import build
from consumers.learner import Learner
from consumers.monitor import Monitor
from consumers.notifier import Notifier
from consumers.predictor import Predictor
from consumers.trainer import Trainer
from meander.component import Component
from meander.config import Settings
from meander.runtime import Runtime
from producers.runner import Producer

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
    make_stream: MakeStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"run{uuid.uuid4().hex[:8]}"  # the embedded backends are the process's own
    settings = Settings(streams=[make_stream(name)])
    stop = threading.Event()
    ran: dict[str, Any] = {}

    def run_until_stopped(components: list[Component], event: threading.Event) -> None:
        ran["components"], ran["stop"] = kinds(components), event
        for component in components:
            component.close()

    monkeypatch.setattr(assembly, "stop_on_signals", lambda: stop)
    monkeypatch.setattr(assembly, "run_until_stopped", run_until_stopped)

    assembly.run(["trainer", "predictor"], settings)

    assert ran == {"components": [(Predictor, name), (Trainer, name)], "stop": stop}
