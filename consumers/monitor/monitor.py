"""The monitor: data drift, missing values and schema violations in one stream's events.

Each step reads one batch of ``S.events`` in the monitor's own consumer group (so it sees every
event, whatever the predictors do), checks each event against the stream's schema and collects
the valid ones into a tumbling window of ``drift.data_window`` events. When a window closes:

- each feature's watch (:mod:`meander.consumers.monitor.feature_watch`) tests it against its
  reference;
- the share of events that broke the schema (or could not be decoded) is checked;
- the stream's profile is written to the store under ``meander:S:profile`` for the dashboard
  and the API: per feature, the last window's summary and drift test, and under ``overall``
  its count, missing values, mean, variance and quantiles (or top categories) since the
  monitor started, from River's ``stats``.

Each alert's ``window`` is how many values its statistic covers (a window's values of the
feature for KS and PSI, its events for the rates, the detector's own window for ADWIN) and its
``at_event`` the id of the window's last event, or of the event a River detector fired at.

Alerts go to ``meander.alerts``; the offsets are committed once they are published. The monitor
never dead-letters: the predictor does that for the same events, and here a bad event only
counts toward the violation rate and stays out of the feature statistics. Per event, the work is
a schema check and two appends; the statistics run once per window, on numpy arrays.

State lives in memory: after a restart the monitor starts over with a fresh reference window
from where its group committed, which costs one window of monitoring and nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from meander import keys, topics
from meander.bus import Message, Outbox
from meander.clock import TimeWindow
from meander.component import Component, rewound_on_failure
from meander.config import StreamConfig
from meander.consumers.monitor.feature_watch import Latch, severity, watch_for
from meander.events import Alert, FeatureEvent, decode_batch, encode
from meander.runtime import Runtime
from meander.schema import Schema
from meander.telemetry import LagSampler, Meter, count_published

__all__ = ["Monitor", "Window"]

log = logging.getLogger(__name__)

BATCH = 500
SOURCE = "/meander/monitor"


@dataclass
class Window:
    """The events of the window being filled: valid ones kept whole, bad ones only counted."""

    events: int = 0
    violations: int = 0
    first_violation: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    last_event: str | None = None

    def reject(self, reason: str, event_id: str | None = None) -> None:
        self.events += 1
        self.violations += 1
        self.first_violation = self.first_violation or reason
        self.last_event = event_id or self.last_event


class Monitor(Component):
    """Watches one stream's feature events; see the module docstring for a step.

    >>> from meander.bus import MemoryBroker, MemoryBus
    >>> from meander.config import Settings
    >>> from meander.store import memory_store
    >>> stream = StreamConfig(name="doc", task="regression", features={"amount": "numeric"},
    ...                       partitions=1, drift={"data_window": 100})
    >>> runtime = Runtime(Settings(), MemoryBus(MemoryBroker()), memory_store())
    >>> runtime.bus.create_topics(topics.layout([stream]))
    >>> events = [FeatureEvent(features={"amount": float(i % 10)}) for i in range(250)]
    >>> _ = runtime.bus.publish([encode("doc.events", e, source="/doc") for e in events])
    >>> monitor = Monitor(runtime, stream)
    >>> monitor.step(), monitor.windows
    (250, 2)
    >>> orjson.loads(runtime.store.get("meander:doc:profile"))["features"]["amount"]["mean"]
    4.5
    """

    name = "monitor"

    def __init__(self, runtime: Runtime, stream: StreamConfig, *, group: str | None = None) -> None:
        self.runtime, self.stream = runtime, stream
        self.schema = Schema(stream)
        self.times = TimeWindow(runtime.settings.max_clock_skew_seconds)
        self.size = stream.drift.data_window
        self.watches = {
            name: watch_for(stream.name, name, feature, stream.drift)
            for name, feature in stream.features.items()
        }
        self.violations = Latch(stream.drift.violation_rate_threshold)
        self.profile_key = keys.profile(stream.name)
        self.window = Window()
        self.windows = 0
        self.events = 0
        self.started_at = datetime.now(UTC)
        self.outbox = Outbox(runtime.bus)
        self.consumer = runtime.bus.subscribe(
            [topics.events(stream.name)], group or f"meander-monitor-{stream.name}"
        )
        self.meter = Meter(self.name, stream.name)
        self.lag = LagSampler(self.name, self.consumer)

    def step(self, timeout: float = 0.0) -> int:
        messages = self.consumer.consume(max_records=BATCH, timeout=timeout)
        self.meter.read(len(messages))
        self.lag.sample()
        if messages:
            with rewound_on_failure(self.consumer, messages):
                alerts = self._observe(messages)
            self.outbox.add(
                [encode(topics.ALERTS, a, source=SOURCE, subject=self.stream.name) for a in alerts],
                lambda: count_published(self.name, alerts, log, self.stream.name),
            )
        # Alerts not acknowledged yet go out (waited on, never sent twice) before anything is
        # committed past them.
        published = bool(self.outbox)
        if published:
            self.outbox.flush()
        if messages or published:
            self.consumer.commit()
        return len(messages)

    def working(self) -> bool:
        """Once its group gave it partitions."""
        return bool(self.consumer.assignment())

    def close(self) -> None:
        self.lag.close()
        self.consumer.close()

    def _observe(self, messages: list[Message]) -> list[Alert]:
        decoded, rejected = decode_batch(
            messages, max_bytes=self.runtime.settings.max_event_bytes, layout=self.stream.encoding
        )
        alerts: list[Alert] = []
        # Unreadable messages count in the window open when their batch arrives: a rate does
        # not need their exact place.
        for _message, problem in rejected:
            self.window.reject(f"not a readable event: {problem}")
            if self.window.events >= self.size:
                alerts += self._close()
        window, size, violation = self.window, self.size, self.schema.violation
        horizon, times = self.times.horizon(), self.times
        for envelope in decoded:
            payload = envelope.payload
            if isinstance(payload, FeatureEvent):
                reason = violation(payload.features) or times.record_problem(
                    envelope.message.timestamp_ms, payload.time, horizon
                )
                if reason is None:
                    window.rows.append(payload.features)
                    window.ids.append(payload.id)
                    window.events += 1
                    window.last_event = payload.id
                else:
                    window.reject(reason, payload.id)
            else:
                window.reject(f"a {envelope.type} event where only feature events belong")
            if window.events >= size:
                alerts += self._close()
                window = self.window
        return alerts

    def _close(self) -> list[Alert]:
        window, self.window = self.window, Window()
        self.windows += 1
        self.events += window.events
        alerts = self._violation_alerts(window)
        features: dict[str, Any] = {}
        for name, watch in self.watches.items():
            found, profile = watch.observe(window.rows, window.ids, at_event=window.last_event)
            alerts += found
            features[name] = {"type": self.stream.features[name].type, **profile}
            features[name]["drift"] = watch.last_test
            features[name]["overall"] = watch.overall.summary()
        self._write_profile(window, features)
        return alerts

    def _violation_alerts(self, window: Window) -> list[Alert]:
        rate = window.violations / window.events
        if not self.violations.crossed(rate):
            return []
        threshold = self.violations.threshold
        return [
            Alert(
                kind="schema_violations",
                stream=self.stream.name,
                severity=severity(rate, threshold),
                statistic="violation_rate",
                value=rate,
                threshold=threshold,
                window=window.events,
                at_event=window.last_event,
                message=f"{rate:.1%} of the last {window.events} events broke the schema "
                f"(threshold {threshold:.1%}); the first: {window.first_violation}",
            )
        ]

    def _write_profile(self, window: Window, features: dict[str, Any]) -> None:
        profile = {
            "stream": self.stream.name,
            "updated_at": datetime.now(UTC).isoformat(),
            "since": self.started_at.isoformat(),
            "count": self.events,
            "windows": self.windows,
            "window": window.events,
            "at_event": window.last_event,
            "violation_rate": window.violations / window.events,
            "first_violation": window.first_violation,
            "features": features,
        }
        try:
            self.runtime.store.set(self.profile_key, orjson.dumps(profile))
        except redis.RedisError as error:
            # The profile is a view for people; alerts and offsets must not wait for it.
            log.warning(
                "monitor %s: profile not written: %s",
                self.stream.name,
                error,
                extra={"stream": self.stream.name},
            )
