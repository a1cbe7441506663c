"""The ``producer`` component: publishes a configured source on a stream's topics.

The source is a synthetic generator name or a ``.csv`` / ``.parquet`` path
(:class:`~meander.config.ProducerSettings`). Each step publishes one batch: its feature
events first, then the feedback that became due. When the source runs out, the labels still
pending are published and every later step returns 0.

>>> from meander.component import drain
>>> from meander.config import Settings
>>> from meander.runtime import Runtime
>>> settings = Settings(streams=[synthetic("sea").stream_config("sea")],
...                     producer={"source": "sea", "events": 1_000, "label_delay": 10})
>>> with Runtime.open(settings) as runtime:
...     producer = Producer(runtime)
...     handled = drain([producer])
>>> handled, producer.publisher.published
(2000, 1000)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from meander import topics
from meander.bus import Outbox
from meander.component import Component
from meander.config import ProducerSettings, Settings, StreamConfig
from meander.exceptions import ConfigError
from meander.producers.exceptions import SourceError
from meander.producers.labels import Publisher
from meander.producers.pacing import TokenBucket, progress_bar
from meander.producers.resume import Stamps, run_of
from meander.producers.sample import Sample
from meander.producers.synthetic import GENERATORS, SyntheticStream, synthetic
from meander.runtime import Runtime
from meander.telemetry.metrics import EVENTS_PRODUCED

if TYPE_CHECKING:
    from meander.producers.replay import FileSource

__all__ = ["Producer", "open_source"]

log = logging.getLogger(__name__)


def open_source(settings: ProducerSettings) -> SyntheticStream | FileSource:
    """The source ``settings.source`` names: a synthetic generator or a file to replay."""
    if settings.source in GENERATORS:
        return synthetic(
            settings.source,
            drift=settings.drift,
            drift_every=settings.drift_every,
            width=settings.drift_width,
            seed=settings.seed,
        )
    # The file readers (pandas, pyarrow: a second of CPU) only in a producer that replays.
    from meander.producers.replay import REPLAYABLE, FileSource

    if settings.source.lower().endswith(REPLAYABLE):
        return FileSource(
            settings.source,
            target=settings.target,
            id_column=settings.id_column,
            time_column=settings.time_column,
            chunk_rows=settings.batch,
        )
    raise SourceError(
        f"unknown producer source {settings.source!r}: name a synthetic generator "
        f"({', '.join(sorted(GENERATORS))}) or a {' or '.join(REPLAYABLE)} file"
    )


class Producer(Component):
    """Publishes the configured source to its stream, a batch per step, rate-limited if asked.

    ``on_finished`` is called once, after the last label of a finite source is published.
    With a rate, a step waits at most its ``timeout`` for tokens and handles 0 when none came.
    A batch not acknowledged in time is waited on again by the next step, never published twice.
    """

    name = "producer"

    def __init__(
        self,
        runtime: Runtime,
        settings: ProducerSettings | None = None,
        *,
        on_finished: Callable[[], None] | None = None,
    ):
        settings = settings or runtime.settings.producer
        self.bus, self.batch, self.on_finished = runtime.bus, settings.batch, on_finished
        self.stream = _target_stream(runtime.settings, settings)
        self.source = open_source(settings)
        _check_schema(self.source, self.stream)
        self.publisher = Publisher(
            self.stream.name,
            label_delay=settings.label_delay,
            label_delay_max=settings.label_delay_max,
            label_loss=settings.label_loss,
            seed=settings.seed,
        )
        self._samples = _samples(self.source, settings.events)
        # Bursts of up to a second's events: each step waits for the broker's acknowledgement,
        # and with a tenth of a second's, steps slower than that (a loaded machine) held the
        # producer under its rate.
        self._bucket = (
            TokenBucket(settings.rate, burst=max(1.0, settings.rate))
            if settings.rate is not None
            else None
        )
        rows = None if isinstance(self.source, SyntheticStream) else self.source.rows()
        total = settings.events or rows
        self._bar = progress_bar(total, f"producer {self.stream.name}", enabled=settings.progress)
        self.outbox = Outbox(self.bus)
        # Started again, it publishes only what its topics do not hold yet.
        self.stamps = Stamps(
            self.bus,
            run_of(settings, self.stream.name),
            [topics.events(self.stream.name), topics.feedback(self.stream.name)],
        )
        if self.stamps.resuming:
            log.info("producer: resuming after what %s already holds", self.stream.name)
        self.produced = EVENTS_PRODUCED.labels(self.name, self.stream.name)
        self._exhausted = self.finished = False
        log.info("producer: publishing %s to stream %s", settings.source, self.stream.name)

    def step(self, timeout: float = 0.0) -> int:
        if self.outbox or self._exhausted:
            return self._send()
        wanted = self.batch
        # What a restart replays to get back where it was is not paced: it is not sent.
        if self._bucket is not None and not self.stamps.resuming:
            wanted = self._bucket.acquire(wanted, timeout)
            if not wanted:
                return 0
        chunk = list(itertools.islice(self._samples, wanted))
        skipped = self.stamps.skipped
        if chunk:
            pushed, due = self.publisher.push(chunk)
            events, feedback = self.stamps.new(pushed), self.stamps.new(due)
            self.outbox.add(events, lambda: self.produced.inc(len(events)))
            self.outbox.add(feedback, lambda: self.produced.inc(len(feedback)))
            self._bar.update(len(chunk))
        else:
            last = self.stamps.new(self.publisher.flush())
            self.outbox.add(last, lambda: self.produced.inc(len(last)))
            self._exhausted = True
        # Records passed by as already stored count as handled: the loop does not idle on them.
        return self._send() + self.stamps.skipped - skipped

    def close(self) -> None:
        self._bar.close()

    def _send(self) -> int:
        # A batch leaves the outbox once the bus has it; one not acknowledged in time is
        # waited on again by the next step, never published twice.
        sent = len(self.outbox.flush())
        if self._exhausted and not self.finished:
            self.finished = True
            self._bar.close()
            log.info(
                "producer: %d events and %d labels published to %s, %d labels lost, %d "
                "records already stored before a restart",
                self.publisher.pushed,
                self.publisher.published,
                self.stream.name,
                self.publisher.lost,
                self.stamps.skipped,
            )
            if self.on_finished is not None:
                self.on_finished()
        return sent


def _target_stream(settings: Settings, producer: ProducerSettings) -> StreamConfig:
    if producer.stream is not None:
        return settings.stream(producer.stream)
    if not settings.streams:
        raise ConfigError(
            "the producer has no stream to publish to: configure one under [[streams]], "
            "or name it in producer.stream"
        )
    return settings.streams[0]


def _samples(source: SyntheticStream | FileSource, events: int) -> Iterator[Sample]:
    count = events or None  # 0 is endless
    if isinstance(source, SyntheticStream):
        return source.samples(count)
    return itertools.islice(source.samples(progress=False), count)


def _check_schema(source: SyntheticStream | FileSource, stream: StreamConfig) -> None:
    # A mismatch is not fatal (the schema check downstream dead-letters what does not fit),
    # but it is almost always a configuration mistake worth saying at start-up.
    produced, declared = set(source.features()), set(stream.features)
    if produced != declared:
        log.warning(
            "producer: stream %s declares features %s but the source has %s; events that do "
            "not fit the schema will be rejected",
            stream.name,
            sorted(declared),
            sorted(produced),
        )
