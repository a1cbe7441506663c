"""Every consumer group keeps committing while its components run as processes of their own.

kafka-python 3.0.12 could strand a member's join when it was stepped with short polls; the member
then read on while every commit was refused, for good (see
:func:`meander.bus.kafka_consumer.finish_join`). Here each group component runs as a deployment
runs it, one ``meander run`` process each (two predictors, so theirs is a group of two), while
events, alerts and model events keep arriving; each group must commit, at every sample, all that
its topics held one period before.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from meander import topics
from meander.bus import Bus, TopicPartition
from meander.config import Settings
from meander.events import Alert, ModelEvent, encode
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from tests.integration.conftest import logs_of, promote_trained_champion

if TYPE_CHECKING:
    from collections.abc import Iterator

    from meander.producers.sample import Sample
    from tests.integration.conftest import Child

MEANDER = str(Path(sys.executable).parent / "meander")
PERIOD = 8.0  # seconds between samples: a group must commit what was there one period before
SAMPLES = 5  # 40 s of observation, once every group has committed
Offsets = dict[TopicPartition, int]


@pytest.mark.integration
def test_every_group_commits_steadily_with_each_component_its_own_process(
    stream_name: str,
    real_settings: Callable[..., Settings],
    write_config: Callable[..., Path],
    spawn: Callable[..., Child],
    kafka_bootstrap: str,
) -> None:
    stream = synthetic("sea").stream_config(stream_name)
    settings = real_settings(stream)
    notifier_group = f"meander-notifier-{stream_name}"
    groups = {
        f"meander-predictor-{stream_name}": [topics.events(stream_name)],
        f"meander-monitor-{stream_name}": [topics.events(stream_name)],
        f"meander-trainer-{stream_name}": [topics.MODELS],
        notifier_group: [topics.ALERTS, topics.MODELS],
    }
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        with Runtime.open(settings) as runtime:
            promote_trained_champion(runtime, stream_name)
            config = write_config(stream)
            children = [
                spawn(
                    name,
                    [MEANDER, "run", name, "--config", str(config)],
                    {"MEANDER_NOTIFIER__GROUP": notifier_group},
                )
                for name in ("predictor", "predictor", "monitor", "trainer", "notifier")
            ]
            news = News(runtime.bus, stream_name)
            # Start-up (imports, joins): until every group has committed.
            news.until(
                children,
                time.monotonic() + 240,
                lambda: all(sum(_committed(admin, group).values()) for group in groups),
            )
            before = {group: _ends(runtime.bus, wanted) for group, wanted in groups.items()}
            for sample in range(SAMPLES):
                news.until(children, time.monotonic() + PERIOD)
                for group in groups:
                    committed = _committed(admin, group)
                    assert _covers(committed, before[group]), (
                        f"sample {sample}: group {group} committed {committed}, short of "
                        f"{before[group]} held {PERIOD:g} s earlier\n{logs_of(children)}"
                    )
                before = {group: _ends(runtime.bus, wanted) for group, wanted in groups.items()}
        for child in children:
            assert child.stop() == 0, f"{child.name} did not exit cleanly:\n{child.output()}"
    finally:
        admin.close()


class News:
    """What keeps every group busy: 20 events every 0.1 s, and each second an alert and a
    model event about a stream nobody here runs (the notifier announces them, the trainer reads
    past them)."""

    def __init__(self, bus: Bus, stream: str) -> None:
        self.bus, self.stream = bus, stream
        self.publisher = Publisher(stream)
        self.samples: Iterator[Sample] = synthetic("sea").samples(None)
        self.last_event = self.last_news = 0.0

    def until(
        self, children: list[Child], deadline: float, done: Callable[[], bool] | None = None
    ) -> None:
        """Publish until ``deadline`` (or until ``done()``); fails when a child exited."""
        while time.monotonic() < deadline:
            dead = [child for child in children if child.process.poll() is not None]
            assert not dead, f"{dead[0].name} exited:\n{logs_of(children)}"
            self._tick()
            if done is not None and done():
                return
            time.sleep(0.05)
        assert done is None, f"some group never committed at start-up\n{logs_of(children)}"

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self.last_event >= 0.1:
            self.last_event = now
            events, _ = self.publisher.push(next(self.samples) for _ in range(20))
            self.bus.publish(events)
        if now - self.last_news >= 1.0:
            self.last_news = now
            elsewhere = f"elsewhere-{self.stream}"
            alert = Alert(
                kind="data_drift", stream=elsewhere, severity="info", statistic="psi", value=0.3
            )
            request = ModelEvent(action="retrain_requested", stream=elsewhere, version=1)
            self.bus.publish(
                [
                    encode(topics.ALERTS, alert, source="/tests/groups"),
                    encode(topics.MODELS, request, source="/tests/groups"),
                ]
            )


def _ends(bus: Bus, wanted: list[str]) -> Offsets:
    partitions = [TopicPartition(t, p) for t in wanted for p in range(bus.partitions(t))]
    with bus.assign(partitions) as reader:
        return reader.end_offsets(partitions)


def _committed(admin: KafkaAdminClient, group: str) -> Offsets:
    try:
        found: Mapping[Any, Any] = admin.list_group_offsets(group).get(group, {})
    except KafkaError as error:  # a group that never committed may have no coordinator yet
        if not error.retriable:
            raise
        return {}
    return {TopicPartition(p.topic, p.partition): o.offset for p, o in found.items()}


def _covers(committed: Offsets, ends: Offsets) -> bool:
    return all(committed.get(partition, 0) >= end for partition, end in ends.items())
