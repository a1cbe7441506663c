"""Structured logs: a JSON line per record with who logged, about which stream and event."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from meander.bus import MemoryBroker, MemoryBus, Message
from meander.config import Settings
from meander.deadletter import DeadLetters
from meander.events import Alert, ModelEvent
from meander.logs import configure_logging
from meander.telemetry import count_published

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def logged() -> Iterator[Callable[..., Lines]]:
    """``logged(settings, component)``: configure logging into a buffer; its JSON lines."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def configure(settings: Settings, component: str = "predictor") -> Lines:
        out = io.StringIO()
        configure_logging(settings, component=component, stream=out)
        return lambda: [orjson.loads(line) for line in out.getvalue().splitlines()]

    yield configure
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_each_record_is_one_json_line_with_its_fields(logged: Callable[..., Lines]) -> None:
    lines = logged(Settings())
    logging.getLogger("meander.consumers.learner.lifecycle").warning(
        "drift on %s", "fraud", extra={"stream": "fraud", "event_id": "tx-9", "kind": "drift"}
    )
    logging.getLogger("meander.component").info("no stream here")

    first, second = lines()
    assert set(first) == {"time", "level", "logger", "message", "component", "stream"} | {
        "event_id",
        "kind",
    }
    assert (first["level"], first["logger"], first["message"]) == (
        "WARNING",
        "meander.consumers.learner.lifecycle",
        "drift on fraud",
    )
    assert (first["component"], first["stream"], first["event_id"]) == ("learner", "fraud", "tx-9")
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["component"] == "predictor"  # a shared module logs as the process's component
    assert "stream" not in second and "event_id" not in second


def test_uvicorn_records_leave_their_terminal_colours_out(logged: Callable[..., Lines]) -> None:
    lines = logged(Settings(), component="service")
    # Not uvicorn's own logger: a uvicorn run earlier in the process stops it propagating.
    logging.getLogger("meander.services.logs_test").info(
        "Started server process [%d]", 7, extra={"color_message": "Started [\x1b[36m%d\x1b[0m]"}
    )

    [line] = lines()
    assert (line["message"], line["component"]) == ("Started server process [7]", "service")
    assert "color_message" not in line


def test_the_level_comes_from_the_settings(logged: Callable[..., Lines]) -> None:
    lines = logged(Settings(log_level="WARNING"))
    logging.getLogger("meander.consumers.trainer.trainer").info("hidden")
    logging.getLogger("meander.consumers.trainer.trainer").error("shown")

    assert [line["message"] for line in lines()] == ["shown"]


def test_an_exception_is_kept_in_its_record(logged: Callable[..., Lines]) -> None:
    lines = logged(Settings())
    try:
        raise ValueError("bad batch")
    except ValueError:
        logging.getLogger("meander.component").exception("step failed")

    [line] = lines()
    assert line["level"] == "ERROR" and "ValueError: bad batch" in line["exception"]


def test_text_format_reads_as_a_line_with_its_fields() -> None:
    out = io.StringIO()
    handler = configure_logging(Settings(log_format="text"), component="all", stream=out)
    try:
        logging.getLogger("meander.producers.runner").warning("slow", extra={"stream": "sea"})
    finally:
        logging.getLogger().removeHandler(handler)

    line = out.getvalue().strip()
    assert line.endswith("WARNING meander.producers.runner: slow [component=producer stream=sea]")


def test_configuring_again_replaces_the_handler(logged: Callable[..., Lines]) -> None:
    first = logged(Settings())
    second = logged(Settings())
    logging.getLogger("x").warning("once")

    assert (len(first()), len(second())) == (0, 1)


def test_by_default_it_writes_to_stderr_as_it_is_when_logging(
    logged: Callable[..., Lines], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = configure_logging(Settings(), component="notifier")
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    try:
        logging.getLogger("meander.consumers.notifier.notifier").warning("to the new stderr")
    finally:
        logging.getLogger().removeHandler(handler)

    assert orjson.loads(swapped.getvalue())["component"] == "notifier"


def test_a_dead_letter_is_logged_with_its_stream_event_id_and_reason_class(
    logged: Callable[..., Lines],
) -> None:
    lines = logged(Settings())
    bus = MemoryBus(MemoryBroker())
    bus.create_topics({"meander.deadletter": 1})
    headers = (("ce_specversion", b"1.0"), ("ce_id", b"tx-42"))
    bad = [Message("fraud.events", 0, i, None, b"{", headers, 0) for i in range(7)]
    DeadLetters(bus, component="predictor").send([(m, "feature 'x' is required") for m in bad])

    found = lines()
    assert len(found) == 6  # five one by one, then the rest summed up
    assert {(r["component"], r["stream"], r["event_id"], r["reason"]) for r in found[:5]} == {
        ("predictor", "fraud", "tx-42", "schema")
    }
    assert "2 more" in found[5]["message"]


def test_alerts_and_decisions_are_logged_where_published(logged: Callable[..., Lines]) -> None:
    lines = logged(Settings())
    alert = Alert(
        kind="data_drift", stream="fraud", severity="critical", statistic="ks", value=0.9,
        at_event="tx-7", message="amount shifted",
    )  # fmt: skip
    promoted = ModelEvent(action="promoted", stream="fraud", version=3, at_event="tx-8")
    count_published(
        "monitor",
        [alert, promoted],
        logging.getLogger("meander.consumers.monitor.monitor"),
        "fraud",
    )

    first, second = lines()
    assert (first["level"], first["kind"], first["severity"], first["event_id"]) == (
        "INFO",
        "data_drift",
        "critical",
        "tx-7",
    )
    assert (second["action"], second["version"], second["event_id"]) == ("promoted", 3, "tx-8")
    assert {first["component"], second["component"]} == {"monitor"}
