"""The stage every hot-path run plays on: one Kafka broker, one Redis, one trained champion.

A :class:`Stage` writes a meander config per stream, trains and promotes the champion
(``StandardScaler | LogisticRegression`` on a few thousand samples), publishes events and labels
with deterministic ids (``e0``, ``e1``, ...), starts ``meander run <component>`` as its own
process, and reads how far a topic has got without joining a consumer group.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, TopicPartition

from meander import topics
from meander.bus.kafka import KafkaBus
from meander.config import Settings, load_settings
from meander.events import FeatureEvent, Feedback, encode
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_model
from meander.runtime import Runtime

__all__ = ["FEATURES", "MODEL", "Stage", "samples"]

FEATURES = tuple(f"f{i}" for i in range(10))
MODEL = "preprocessing.StandardScaler | linear_model.LogisticRegression"
WEIGHTS = np.linspace(-1.0, 1.0, len(FEATURES))
CHUNK = 10_000
CONFIG = """\
kafka_bootstrap = "{kafka}"
redis_url = "{redis}"
model_signing_key = "hot-path benchmark key, long enough to sign model blobs"
metrics_port = {metrics_port}
log_level = "WARNING"

[[streams]]
name = "{stream}"
task = "binary"
model = "{model}"
partitions = 3

[streams.features]
{features}

[streams.label_window]
ttl_seconds = 86400.0
max_pending = {max_pending}
"""


def samples(start: int, count: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(first index, features, labels)`` chunks of events ``start..start+count``, reproducibly.

    >>> [(first, x.shape, y.dtype.name) for first, x, y in samples(0, 3)]
    [(0, (3, 10), 'bool')]
    """
    index = start
    while index < start + count:
        chunk = index // CHUNK
        rng = np.random.default_rng(chunk)
        x = rng.normal(size=(CHUNK, len(FEATURES)))
        y = (x @ WEIGHTS + rng.normal(scale=0.5, size=CHUNK)) > 0
        low = index - chunk * CHUNK
        high = min(CHUNK, start + count - chunk * CHUNK)
        yield index, x[low:high], y[low:high]
        index += high - low


@dataclass
class Stage:
    """Where the runs happen: the broker, Redis, and a scratch folder for configs and logs."""

    kafka: str
    redis: str
    scratch: Path
    broker_pid: int | None = None  # the broker's process when this machine runs it

    def config(self, stream: str, *, metrics_port: int = 0, max_pending: int = 2_000_000) -> Path:
        """Write the TOML file ``meander run`` reads for ``stream``; returns its path."""
        path = self.scratch / f"{stream}-{metrics_port}.toml"
        features = "\n".join(f'{name} = "numeric"' for name in FEATURES)
        path.write_text(
            CONFIG.format(
                kafka=self.kafka,
                redis=self.redis,
                metrics_port=metrics_port,
                stream=stream,
                model=MODEL,
                features=features,
                max_pending=max_pending,
            )
        )
        return path

    def settings(self, stream: str) -> Settings:
        """The settings the config file of ``stream`` holds."""
        return load_settings(self.config(stream))

    def prepare(self, stream: str, training: int = 3_000) -> None:
        """Create the stream's topics and make a freshly trained model its only champion."""
        settings = self.settings(stream)
        runtime = Runtime.open(settings)
        try:
            model = build_model(MODEL)
            # Training data from far beyond any benchmark's events, so nothing is seen twice.
            for _, x, y in samples(50_000_000, training):
                for row, label in zip(x, y, strict=True):
                    model.learn_one(dict(zip(FEATURES, row.tolist(), strict=True)), bool(label))  # type: ignore[attr-defined]
            registry = Registry(runtime.store, stream, signer_for(settings))
            version = registry.register(model, spec=MODEL).version
            registry.promote(version, reason="hot-path benchmark champion")
        finally:
            runtime.close()

    def publish_events(
        self, stream: str, start: int, count: int, *, time: datetime | None = None
    ) -> None:
        """Publish events ``e{start}..`` to ``S.events`` and wait until the broker has them."""
        topic = topics.events(stream)
        with KafkaBus(self.kafka) as bus:
            for first, x, _ in samples(start, count):
                bus.publish(
                    [
                        encode(
                            topic,
                            FeatureEvent(
                                id=f"e{first + i}",
                                time=time or datetime.now(UTC),
                                features=dict(zip(FEATURES, row, strict=True)),
                            ),
                            source="/bench/hotpath",
                        )
                        for i, row in enumerate(x.tolist())
                    ]
                )

    def publish_feedback(self, stream: str, start: int, count: int) -> None:
        """Publish the true label of events ``e{start}..`` to ``S.feedback``."""
        topic = topics.feedback(stream)
        with KafkaBus(self.kafka) as bus:
            for first, _, y in samples(start, count):
                bus.publish(
                    [
                        encode(
                            topic,
                            Feedback(event_id=f"e{first + i}", label=label),
                            source="/bench/hotpath",
                        )
                        for i, label in enumerate(y.tolist())
                    ]
                )

    def spawn(
        self, component: str, config: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``meander run <component> -c <config>`` (``env`` added to this process's
        environment); its output goes to a log file."""
        # The child keeps its own copy of the descriptor; this process closes its one now.
        with (self.scratch / f"{component}-{config.stem}.log").open("ab") as log:
            return subprocess.Popen(
                [str(Path(sys.executable).parent / "meander"), "run", component, "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    def log_of(self, component: str, config: Path) -> str:
        """The last lines a spawned component wrote, to explain a failure."""
        path = self.scratch / f"{component}-{config.stem}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:])

    def peeker(self) -> KafkaConsumer:
        """A consumer in no group, to look at topics without moving anyone's offsets."""
        return KafkaConsumer(bootstrap_servers=self.kafka, enable_auto_commit=False)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Ask a spawned component to stop (SIGTERM), and kill it if it does not within ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def partitions_of(peeker: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic`` (empty while it does not exist)."""
    return [TopicPartition(topic, p) for p in sorted(peeker.partitions_for_topic(topic) or ())]


def count(peeker: KafkaConsumer, topic: str) -> int:
    """Records on ``topic`` now: the sum of its partitions' end offsets minus their starts."""
    parts = partitions_of(peeker, topic)
    if not parts:
        return 0
    ends = peeker.end_offsets(parts)
    starts = peeker.beginning_offsets(parts)
    return sum(ends[p] - starts[p] for p in parts)


def span_ms(peeker: KafkaConsumer, topic: str) -> tuple[int, int]:
    """Timestamps (ms) of the first and the last record on ``topic``.

    One producer stamps its records in order within a partition, so the first is the earliest
    of the partitions' first records and the last the latest of their last records: reading
    those few records replaces reading the whole topic.
    """
    parts = partitions_of(peeker, topic)
    starts, ends = peeker.beginning_offsets(parts), peeker.end_offsets(parts)
    stamps: list[int] = []
    for part in parts:
        if ends[part] <= starts[part]:
            continue
        peeker.assign([part])
        peeker.seek(part, starts[part])
        while True:
            batch = peeker.poll(timeout_ms=2_000, max_records=1).get(part, [])
            if batch:
                stamps.append(batch[0].timestamp)
                break
        last = _last_stamp(peeker, part, starts[part], ends[part])
        if last is not None:
            stamps.append(last)
    if not stamps:
        raise ValueError(f"{topic} holds no records: nothing was produced to time")
    return min(stamps), max(stamps)


def _last_stamp(peeker: KafkaConsumer, part: TopicPartition, start: int, end: int) -> int | None:
    """The timestamp of the last record before ``end``. A transactional producer's partitions
    end with commit markers, which take offsets but are no records: look further back, each
    time four times as far, until a record is found."""
    back = 1
    while True:
        offset = max(start, end - back)
        peeker.seek(part, offset)
        stamps: list[int] = []
        while peeker.position(part) < end:
            stamps += [r.timestamp for r in peeker.poll(timeout_ms=2_000).get(part, [])]
        if stamps or offset == start:
            return max(stamps) if stamps else None
        back *= 4
