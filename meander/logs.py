"""Structured logs: one JSON object per line (or plain text), with who logged and about what.

Every record carries ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and
``component``; ``stream`` and ``event_id`` when the call site knows them, passed with
``extra=``, as is anything else it adds (``reason``, ``kind``, ``action``...). The component is
the one the call site names, else the one its module belongs to (a learner's lifecycle module
logs as the learner, even in ``meander run all``), else the process's own.

>>> import io
>>> out = io.StringIO()
>>> handler = configure_logging(component="predictor", level="INFO", stream=out)
>>> logging.getLogger("meander.consumers.learner.learner").warning(
...     "label refused", extra={"stream": "fraud", "event_id": "tx-1"})
>>> record = orjson.loads(out.getvalue())
>>> {k: record[k] for k in ("level", "logger", "message", "component", "stream", "event_id")}
... # doctest: +NORMALIZE_WHITESPACE
{'level': 'WARNING', 'logger': 'meander.consumers.learner.learner', 'message': 'label refused',
 'component': 'learner', 'stream': 'fraud', 'event_id': 'tx-1'}
>>> logging.getLogger().removeHandler(handler)
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from meander.config import Settings
from meander.vocabulary import COMPONENTS

__all__ = ["JsonFormatter", "TextFormatter", "component_of", "configure_logging"]

# The loggers of modules that work for one component, by module (or package) name.
_COMPONENTS = {
    **{f"meander.consumers.{name}": name for name in COMPONENTS if name != "producer"},
    "meander.producers": "producer",
    "meander.services": "service",
    "uvicorn": "service",
}
# What every LogRecord has; anything else on a record came from ``extra=``. uvicorn adds its
# message again with terminal colours (color_message): no use in a log file.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_STANDARD |= {"color_message"}


def component_of(logger: str) -> str | None:
    """The component a logger's module works for, if it works for one.

    >>> component_of("meander.consumers.learner.lifecycle")
    'learner'
    >>> component_of("meander.producers.runner"), component_of("meander.services.app")
    ('producer', 'service')
    >>> component_of("meander.consumers.assembly"), component_of("x")
    (None, None)
    """
    name = logger
    while name:
        if name in _COMPONENTS:
            return _COMPONENTS[name]
        name = name.rpartition(".")[0]
    return None


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON; ``component`` is the process's own."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self.component)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(fields, default=str).decode()


class TextFormatter(logging.Formatter):
    """Formats a record as a line for people: the message, then its fields as ``key=value``."""

    def __init__(self, component: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record, self.component)
        extra = {k: v for k, v in fields.items() if k not in ("time", "level", "logger", "message")}
        suffix = " ".join(f"{key}={value}" for key, value in extra.items())
        head, newline, rest = line.partition("\n")  # a traceback goes after the fields
        return f"{head} [{suffix}]{newline}{rest}"


def configure_logging(
    settings: Settings | None = None,
    *,
    component: str,
    level: str | None = None,
    format: Literal["json", "text"] | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr), as ``settings.log_format``
    says, at ``settings.log_level``; ``level`` and ``format`` override them.

    Calling it again replaces the handler it installed before. Returns the handler.
    """
    level = level or (settings.log_level if settings is not None else "INFO")
    format = format or (settings.log_format if settings is not None else "json")
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    formatter = JsonFormatter if format == "json" else TextFormatter
    handler.setFormatter(formatter(component))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


_MARK = "_meander_logs"


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to ``sys.stderr`` as it is when a record comes, not as it was at start-up:
    whoever swaps it later (a test's capture, a daemon's redirection) gets the logs."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _fields(record: logging.LogRecord, component: str) -> dict[str, Any]:
    extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "component": extra.pop("component", None) or component_of(record.name) or component,
    }
    return fields | extra
