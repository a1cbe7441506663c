"""A learner killed with SIGKILL midway resumes from its checkpoint and ends with the model
it would have had: the same answers, to the last bit of every probability.

The same records (same keys, partitions and timestamps) go to two streams on real Kafka. One
learner process learns the first stream straight through. On the second, a learner that
checkpoints often is killed once a checkpoint holds some of the labels, and a new process,
after the dead one's lease lapses, finishes the stream from that checkpoint. The killed run
takes smaller batches than the others: how labels are batched must not matter either.
"""

from __future__ import annotations

import pickle
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meander import topics
from meander.bus import Record
from meander.config import Settings, StreamConfig
from meander.consumers.learner.checkpoint import Checkpoints
from meander.producers.labels import Publisher
from meander.producers.synthetic import synthetic
from meander.runtime import Runtime

EVENTS = 3_000
PROBES = 300
# The scaler's running means make the tree's answers change when two labels swap places, and
# learning one label twice or missing one changes them too.
MODEL = "preprocessing.StandardScaler | tree.HoeffdingTreeClassifier"
LEARNER = str(Path(__file__).with_name("learner_process.py"))


def recorded(stream: str) -> list[Record]:
    """The stream's events and labels, encoded once: every copy has the same timestamps, so
    the learner's merge of partitions orders the copies alike."""
    source = synthetic("agrawal", drift_every=1_500, seed=11)
    publisher = Publisher(stream, label_delay=20, label_delay_max=60, seed=11)
    records: list[Record] = []
    samples = list(source.samples(EVENTS))
    for start in range(0, EVENTS, 500):
        events, labels = publisher.push(samples[start : start + 500])
        records += events + labels
    return records + publisher.flush()


def copied(records: list[Record], old: str, new: str) -> list[Record]:
    renamed = {topics.events(old): topics.events(new), topics.feedback(old): topics.feedback(new)}
    return [
        Record(renamed[r.topic], r.value, r.key, r.headers, r.partition, r.timestamp_ms)
        for r in records
    ]


@pytest.mark.integration
def test_a_killed_learner_resumes_and_ends_with_the_same_model(
    stream_name: str,
    tmp_path: Path,
    real_settings: Callable[..., Settings],
    write_config: Callable[..., Path],
    spawn: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    learning = {"checkpoint_every": 300, "lease_seconds": 2.0}
    source = synthetic("agrawal")
    reference, recovered = (
        source.stream_config(f"{stream_name}{suffix}", model=MODEL) for suffix in ("a", "b")
    )
    recovered = recovered.model_copy(
        update={"learning": recovered.learning.model_copy(update=learning)}
    )
    probe = tmp_path / "probe.pkl"
    probe.write_bytes(
        pickle.dumps([s.features for s in synthetic("agrawal", seed=3).samples(PROBES)])
    )
    records = recorded(reference.name)

    def learner(stream: StreamConfig, run: str, *extra: str) -> Any:
        config = write_config(stream, name=f"{stream.name}.toml")
        out = tmp_path / f"{run}.pkl"
        command = [sys.executable, LEARNER, str(config), str(EVENTS), str(probe), str(out), *extra]
        return spawn(run, command)

    with Runtime.open(real_settings(reference, recovered)) as runtime:
        runtime.bus.publish(records)
        runtime.bus.publish(copied(records, reference.name, recovered.name))

        straight = learner(reference, "reference")
        assert straight.process.wait(150) == 0, straight.output()

        checkpoints = Checkpoints(runtime, recovered)
        first = learner(recovered, "killed", "--batch", "100", "--pause", "0.2")
        wait_for(
            lambda: (state := checkpoints.load()) is not None and state.labels > 0,
            "the first checkpoint",
            timeout=120,
            children=[first],
        )
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(30) == -signal.SIGKILL
        at_kill = checkpoints.load()
        assert at_kill is not None and 0 < at_kill.labels < EVENTS

        second = learner(recovered, "recovered")
        assert second.process.wait(150) == 0, second.output()

    expected = pickle.loads((tmp_path / "reference.pkl").read_bytes())
    result = pickle.loads((tmp_path / "recovered.pkl").read_bytes())
    assert expected["labels"] == result["labels"] == EVENTS
    assert expected["resumed_from"] == 0
    assert result["resumed_from"] == at_kill.labels
    assert f"resumed at {at_kill.labels} labels" in second.output()
    assert sum(answer[0] is not None for answer in expected["answers"]) == PROBES
    assert result["answers"] == expected["answers"]
