"""A decision not yet announced when Redis loses its data is restored from ``meander.state`` and
announced, under the id it was made with, by the trainer that restores the store.

On the session's Kafka and a Redis server of the test's own, whose data is wiped.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from river import tree

from meander import topics
from meander.bus import TopicPartition
from meander.config import Settings
from meander.consumers.trainer.trainer import Trainer
from meander.events import Envelope, ModelEvent, decision, decode_batch
from meander.infra.redis import LocalRedis
from meander.models.registry import Registry
from meander.models.unannounced import Announcement
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime


def test_a_decision_unannounced_when_redis_lost_its_data_is_announced_after_the_restore(
    stream_name: str, own_redis: LocalRedis, real_settings: Callable[..., Settings]
) -> None:
    store = own_redis
    stream = synthetic("sea").stream_config(stream_name, model="tree.HoeffdingTreeClassifier")
    settings = real_settings(stream, redis_url=store.url)
    with Runtime.open(settings) as runtime:
        registry = Registry.of(runtime, stream)
        first = registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
        registry.promote(first)
        second = registry.register(tree.HoeffdingTreeClassifier(), spec="tree").version
        event = decision(stream_name, "promoted", second, first, "it won its race", {})
        made = Announcement.of(event, source="/test")
        registry.promote(second, also=lambda pipe, _: registry.unannounced.add(pipe, [made]))
    store.stop()
    for path in store.data_dir.iterdir() if store.data_dir else ():
        if path.name != store.log_path.name:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    store.start(timeout=30)

    with Runtime.open(settings) as runtime:
        assert runtime.store.dbsize() == 0
        trainer = Trainer(runtime, stream)
        deadline = time.monotonic() + 60
        while not (announced := _decisions(runtime, stream_name)):
            assert time.monotonic() < deadline, "the decision was never announced"
            trainer.step(0.2)
        trainer.close()
        registry = Registry.of(runtime, stream)
        assert [(e.id, e.payload.action) for e in announced] == [(made.id, "promoted")]
        assert registry.champion() == second and registry.unannounced.pending() == []


def _decisions(runtime: Runtime, stream: str) -> list[Envelope]:
    partitions = [
        TopicPartition(topics.MODELS, p) for p in range(runtime.bus.partitions(topics.MODELS))
    ]
    messages = []
    with runtime.bus.assign(partitions) as consumer:
        while batch := consumer.consume(10_000, 0.5):
            messages += batch
    envelopes = decode_batch(messages)[0]
    return [
        e for e in envelopes if isinstance(e.payload, ModelEvent) and e.payload.stream == stream
    ]
