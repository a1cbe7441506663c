"""With ``processing_guarantee = "exactly_once"``, a read_committed reader of a stream's
predictions sees each event's champion prediction once, however often the predictor is killed,
on either Kafka client (kafka-python, confluent-kafka).

Each predictor batch (predictions, dead letters and the input offsets) is one Kafka transaction:
a SIGKILLed predictor's open transaction is aborted (its records are never read committed and
its offsets never committed), and the predictor that takes its partitions over starts from the
offsets the last committed transaction wrote. Events arrive throughout, so the kills land in
the middle of the work.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from meander import topics
from meander.bus import Bus, Record, TopicPartition
from meander.bus.kafka import KafkaBus
from meander.config import Settings
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime
from tests.integration.conftest import logs_of, promote_trained_champion

if TYPE_CHECKING:
    from meander.producers.sample import Sample
    from tests.integration.conftest import Child

pytestmark = pytest.mark.integration

MEANDER = str(Path(sys.executable).parent / "meander")
EVENTS_PER_TICK = 20  # every 0.1 s: 200 events a second
KILLS = 3
EXACTLY_ONCE = {"MEANDER_PROCESSING_GUARANTEE": "exactly_once"}


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_each_champion_prediction_is_read_committed_once_across_predictor_kills(
    client: str,
    stream_name: str,
    real_settings: Callable[..., Settings],
    write_config: Callable[..., Path],
    spawn: Callable[..., Child],
    wait_for: Callable[..., object],
    kafka_bootstrap: str,
) -> None:
    stream = synthetic("sea").stream_config(stream_name)
    config = str(write_config(stream))
    predictions = topics.predictions(stream_name)
    with Runtime.open(real_settings(stream)) as runtime:
        promote_trained_champion(runtime, stream_name)
        samples: Iterator[Sample] = synthetic("sea").samples(None)
        publisher = Publisher(stream_name)
        published: list[str] = []

        def publish_for(
            seconds: float, children: list[Child], until: Callable[[], bool] | None = None
        ) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not (until and until()):
                assert all(c.process.poll() is None for c in children), logs_of(children)
                events, _ = publisher.push(next(samples) for _ in range(EVENTS_PER_TICK))
                runtime.bus.publish(events)
                published.extend(_event_id(event) for event in events)
                time.sleep(0.1)

        run = [MEANDER, "run", "predictor", "--config", config]
        env = {**EXACTLY_ONCE, "MEANDER_KAFKA_CLIENT": client}
        predictor = spawn("predictor", run, env)
        publish_for(120, [predictor], until=lambda: _count(runtime.bus, predictions) > 0)
        assert _count(runtime.bus, predictions) > 0, f"no prediction:\n{predictor.output()}"
        killed = [predictor]
        for _ in range(KILLS):
            publish_for(4.0, [predictor])
            predictor.process.send_signal(signal.SIGKILL)
            predictor.process.wait(30)
            predictor = spawn("predictor", run, env)
            killed.append(predictor)
        publish_for(2.0, [predictor])

        with KafkaBus(kafka_bootstrap, read_committed=True) as committed:
            wait_for(
                lambda: len(_champions(committed, predictions)) >= len(published),
                "a committed champion prediction for every event",
                timeout=180,
                children=[predictor],
            )
            assert predictor.stop() == 0, predictor.output()
            seen = _champions(committed, predictions)
        everything = _champions(runtime.bus, predictions)  # read_uncommitted: aborted ones too

    assert set(seen) == set(published), logs_of(killed)
    repeated = {event: n for event, n in seen.items() if n > 1}
    assert repeated == {}, (
        f"{len(repeated)} of {len(published)} events have more than one committed champion "
        f"prediction (read uncommitted: {sum(everything.values()) - len(everything)} repeats)"
    )


def _event_id(record: Record) -> str:
    headers = dict(record.headers)
    if "ce_id" in headers:  # binary-mode CloudEvents
        return headers["ce_id"].decode()
    return str(orjson.loads(record.value or b"{}")["id"])


def _count(bus: Bus, topic: str) -> int:
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    with bus.assign(partitions) as reader:
        return sum(reader.end_offsets(partitions).values())


def _champions(bus: Bus, topic: str) -> Counter[str]:
    """How many champion predictions ``bus`` reads in ``topic`` for each event id, reading to
    the end each partition had when asked."""
    partitions = [TopicPartition(topic, p) for p in range(bus.partitions(topic))]
    found: Counter[str] = Counter()
    with bus.assign(partitions) as reader:
        ends = reader.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while any(reader.position(p) < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for message in reader.consume(5_000, 0.5):
                prediction = orjson.loads(message.value or b"{}")
                prediction = prediction.get("data", prediction)
                if prediction["role"] == "champion":
                    found[prediction["event_id"]] += 1
    return found
