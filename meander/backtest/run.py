"""``meander backtest``: a labelled file replayed through the real closed loop.

The rows go, in file order and in chunks, through the very components that run in production
(:class:`~meander.consumers.loop.Loop`: predictor, learner, trainer and monitor) on fresh embedded
backends, a new in-process bus and a new in-process store, so a backtest sees nothing of a
deployment or of an earlier run and leaves nothing behind. For each chunk the events are
published and scored first; then the labels that fell due are published and learned: all of
the chunk's labels without a label delay, else each one ``label_delay`` events after its own.
What happened is read back from the topics afterwards (:mod:`meander.backtest.report`).

The stream is the configured one when the settings name streams; otherwise it is inferred
from the file's first rows (:mod:`meander.backtest.stream`). A column the stream does not know
is left out of the events, and listed in the report.

>>> import pathlib, tempfile
>>> import pandas as pd
>>> from meander.producers import synthetic
>>> rows = [{**s.features, "label": s.label} for s in synthetic("sea", seed=1).samples(300)]
>>> path = pathlib.Path(tempfile.mkdtemp()) / "sea.csv"
>>> pd.DataFrame(rows).to_csv(path, index=False)
>>> run = run_backtest(path, target="label", monitor=False)
>>> run.stream.name, run.stream.task, sorted(run.stream.features), run.events
('sea', 'binary', ['x0', 'x1', 'x2'], 300)
>>> run.state.served["champion"].n
300
>>> run.close()
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meander.backtest.stream import INFER_ROWS, resolve_stream
from meander.config import Settings, StreamConfig
from meander.consumers.learner.learning import LearnerState
from meander.consumers.loop import Loop, TickClock
from meander.exceptions import ConfigError
from meander.producers.labels import Publisher
from meander.producers.replay import FileSource
from meander.producers.sample import Sample
from meander.producers.text import from_text
from meander.runtime import Runtime

__all__ = ["BacktestRun", "run_backtest"]

CHUNK_ROWS = 100  # events published and scored before their labels can follow
BACKTEST_LEASE_SECONDS = 3_600.0  # the learner's (lease_seconds' most): its store is its own
SOURCE = "/meander/backtest"


@dataclass
class BacktestRun:
    """A finished backtest: the stream, the backends it ran on and what the learner ended with.

    ``event_ids[i]`` and ``labels[i]`` belong to the file's ``i``-th row (``labels[i]`` is None
    when the row had no label). The runtime stays open so its topics can be read back; call
    :meth:`close` when done.
    """

    path: Path
    stream: StreamConfig
    runtime: Runtime
    state: LearnerState
    event_ids: list[str]
    labels: list[Any]
    seconds: float
    label_delay: int
    monitor: bool
    ignored_columns: list[str]

    @property
    def events(self) -> int:
        return len(self.event_ids)

    def close(self) -> None:
        self.runtime.close()


def run_backtest(
    path: str | Path,
    *,
    target: str,
    settings: Settings | None = None,
    stream: str | None = None,
    model: str | None = None,
    label_delay: int = 0,
    monitor: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = False,
) -> BacktestRun:
    """Replay ``path`` through the loop of a fresh embedded deployment.

    ``stream`` names the configured stream to use (the first when None) or the inferred one;
    ``model`` replaces the stream's champion spec. ConfigError (SpecError, ReplayError) when the
    file, its target column, the stream or the spec cannot be used; nothing has run then.
    """
    if label_delay < 0 or chunk_rows < 1:
        raise ConfigError(
            f"label_delay must be at least 0 and chunk_rows at least 1, got {label_delay} "
            f"and {chunk_rows}"
        )
    settings = settings or Settings()
    source = FileSource(path, target=target, chunk_rows=max(chunk_rows, INFER_ROWS))
    config = _unleased(resolve_stream(source, settings, name=stream, model=model))
    ignored = [column for column in source.columns() if column not in config.features]
    started = time.perf_counter()
    runtime = _fresh_runtime(settings, config)
    try:
        state, event_ids, labels = _replay(
            source, config, runtime, label_delay, monitor, chunk_rows, progress
        )
    except BaseException:
        runtime.close()
        raise
    return BacktestRun(
        path=Path(path),
        stream=config,
        runtime=runtime,
        state=state,
        event_ids=event_ids,
        labels=labels,
        seconds=time.perf_counter() - started,
        label_delay=label_delay,
        monitor=monitor,
        ignored_columns=ignored,
    )


def _replay(
    source: FileSource,
    stream: StreamConfig,
    runtime: Runtime,
    label_delay: int,
    monitor: bool,
    chunk_rows: int,
    progress: bool,
) -> tuple[LearnerState, list[str], list[Any]]:
    """Feed every row through the loop; the learner's final state, the event ids and labels."""
    loop = Loop(runtime, stream, monitor=monitor)
    publisher = Publisher(stream.name, label_delay=label_delay, source=SOURCE)
    clock = TickClock()
    event_ids: list[str] = []
    labels: list[Any] = []
    try:
        samples = (_fit(sample, stream, clock) for sample in source.samples(progress=progress))
        for chunk in _chunks(samples, chunk_rows):
            event_ids.extend(sample.event_id for sample in chunk)
            labels.extend(sample.label for sample in chunk)
            events, due = publisher.push(chunk)
            loop.feed(events, clock.stamp(due))
        loop.feed([], clock.stamp(publisher.flush()))
        state = loop.learner.state
    finally:
        loop.close()
    if state is None:  # the learner lost its lease on a store nobody else can reach
        raise AssertionError("the backtest's learner holds no state after the run")
    return state, event_ids, labels


def _unleased(stream: StreamConfig) -> StreamConfig:
    """``stream`` with a learner's lease no pause outlasts. A backtest's store is its own, so
    nobody can take the stream over; with the 5 s default, a learner starved of CPU by a loaded
    machine lost its lease mid-run, over and over ("held by nobody"), and did its work since its
    last checkpoint again. It changes nothing the loop learns or serves."""
    learning = stream.learning.model_copy(update={"lease_seconds": BACKTEST_LEASE_SECONDS})
    return stream.model_copy(update={"learning": learning})


def _fit(sample: Sample, stream: StreamConfig, clock: TickClock) -> Sample:
    """The sample as the stream takes it: its features only (numbers that a CSV chunk turned
    into text taken back, see :func:`~meander.producers.text.from_text`), a label its task
    accepts."""
    features = {
        name: from_text(value, stream.features[name].type)
        for name, value in sample.features.items()
        if name in stream.features
    }
    label = sample.label
    if stream.task != "regression" and isinstance(label, float):
        # A class label is never a float: 1.0 is class 1, and 0.5 is the class "0.5".
        label = int(label) if label.is_integer() else str(label)
    moment = sample.time if sample.time is not None else clock.tick()
    return dataclasses.replace(sample, features=features, label=label, time=moment)


def _chunks(samples: Iterable[Sample], size: int) -> Iterator[list[Sample]]:
    iterator = iter(samples)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _fresh_runtime(settings: Settings, stream: StreamConfig) -> Runtime:
    settings = settings.model_copy(
        update={"kafka_bootstrap": None, "redis_url": None, "streams": [stream]}
    )
    # Backends of its own: the process-wide embedded store may hold another run's registry.
    return Runtime.embedded(settings)
