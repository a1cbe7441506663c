"""What every route is given: the settings, the open backends, the keys, the stream asked for.

Routes take these as FastAPI dependencies (``ServiceDep``, ``StreamDep``), so no route reaches
for a global and tests build an app per case.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from meander.bus import Delivered, Outbox, Record
from meander.clock import TimeWindow
from meander.config import Settings, StreamConfig
from meander.exceptions import BusError, InvalidTimestamp, MessageTooLarge, StoreUnavailable
from meander.runtime import Runtime
from meander.schema import Schema, shown
from meander.services.auth import ApiKeys
from meander.services.champions import Champions
from meander.services.problems import refused
from meander.telemetry.metrics import EVENTS_PRODUCED

__all__ = ["Service", "ServiceDep", "StreamDep", "unavailable"]


@dataclass
class Service:
    """One service process: its settings, its backends and the keys it accepts.

    The backends are connected on first use, not at start-up, so the service comes up while
    Kafka or Redis is still down: ``/readyz`` says which, and other routes answer 503.
    """

    settings: Settings
    opened: Runtime | None = None
    keys: ApiKeys = field(init=False)
    times: TimeWindow = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _schemas: dict[str, Schema] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        service = self.settings.service
        self.keys = ApiKeys(service.api_keys, service.anonymous_scopes)
        self.times = TimeWindow(self.settings.max_clock_skew_seconds)

    @property
    def runtime(self) -> Runtime:
        """The open bus and store; 503 when they cannot be reached (from a worker thread)."""
        if self.opened is None:
            with self._lock:
                if self.opened is None:
                    try:
                        self.opened = Runtime.open(self.settings)
                    except (BusError, StoreUnavailable) as error:
                        raise unavailable(self.settings, error) from None
        return self.opened

    def stream(self, name: str) -> StreamConfig:
        """The configured stream ``name``; 404 naming the known ones otherwise."""
        for stream in self.settings.streams:
            if stream.name == name:
                return stream
        known = ", ".join(s.name for s in self.settings.streams) or "none"
        message = f"unknown stream {shown(name)}; configured streams: {known}"
        raise refused(404, ["path", "stream"], message, "not_found")

    @cached_property
    def champions(self) -> Champions:
        """The champions synchronous predictions are answered with."""
        return Champions(self.runtime.store, self.settings)

    def schema(self, stream: StreamConfig) -> Schema:
        """The compiled checks of ``stream``, built once."""
        schema = self._schemas.get(stream.name)
        if schema is None:
            schema = self._schemas[stream.name] = Schema(stream)
        return schema

    def publish(self, records: Sequence[Record], stream: str = "") -> list[Delivered]:
        """Publish and wait for the broker's acknowledgement, retrying; 503 when it never comes.

        Called from a worker thread (a plain ``def`` route), never on the event loop. What was
        published counts in ``meander_events_produced_total`` under ``stream``.
        """
        service = self.settings.service
        # Retrying waits on the same records: sending them again could store them twice.
        outbox = Outbox(self.runtime.bus, timeout=service.publish_timeout_seconds)
        outbox.add(records)
        for attempt in range(service.publish_attempts):
            try:
                delivered = outbox.flush()
                EVENTS_PRODUCED.labels("service", stream).inc(len(records))
                return delivered
            except MessageTooLarge as error:
                raise refused(413, ["body"], str(error), "too_large") from None
            except InvalidTimestamp as error:  # the routes check times first: a bug if here
                raise refused(422, ["body"], str(error), "time") from None
            except BusError as error:
                if attempt + 1 == service.publish_attempts:
                    raise unavailable(self.settings, error) from None
                time.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable: publish_attempts is positive")


def unavailable(settings: Settings, reason: Exception | str) -> HTTPException:
    """503 with Retry-After: the request was not done (or not acknowledged: records handed to
    the broker may still be stored), and may be sent again as it is."""
    return HTTPException(
        503,
        f"{reason}; send the request again later (event ids make a repeat recognisable)",
        headers={"Retry-After": str(settings.service.retry_after_seconds)},
    )


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _stream(
    request: Request,
    stream: Annotated[str, Path(description="the stream's name", examples=["fraud"])],
) -> StreamConfig:
    return _service(request).stream(stream)


ServiceDep = Annotated[Service, Depends(_service)]
StreamDep = Annotated[StreamConfig, Depends(_stream)]
