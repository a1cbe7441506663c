"""Where a learner's state lives between runs, and what it shares with everyone else.

The checkpoint is the whole :class:`~meander.consumers.learner.learning.LearnerState` (models,
metrics, detectors, pending events, offsets), pickled, signed like every model blob, and written
with one ``SET``: a reader sees the old checkpoint or the new one, never half of each. A tampered
checkpoint is refused before it is unpickled.

What others read is separate and cheap: model snapshots in the registry (predictors serve
them), the metrics of every live version, and the state of each race (the trainer judges it).

Every write is fenced by the learner's lease (a learner that lost it writes nothing), and the
checkpoint and the snapshots are also recorded in Kafka's changelog, from which a store that
lost its data is restored: at least every ``LOG_SPACING`` seconds, and at once after a
decision, so a restored learner resumes at most that far back (and learns those labels again,
to the same model).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from meander import keys
from meander.config import StreamConfig
from meander.consumers.learner.learning import LearnerState
from meander.exceptions import MeanderError
from meander.models.blobs import dumps, loads
from meander.models.registry import Registry
from meander.models.signing import signer_for
from meander.models.specs import build_detector, build_model, check_task, spec_text
from meander.models.versions import config_hash
from meander.runtime import Runtime
from meander.store.lease import Lease
from meander.telemetry import set_model_metrics
from meander.telemetry.metrics import CHECKPOINT_TIMESTAMP

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["COPIED_FROM_BYTES", "LOG_SPACING", "Checkpoints", "initial_state"]

LOG_SPACING = 5.0  # seconds between two copies of the checkpoint (or of a snapshot) in Kafka
# Labels a model learns between two of its snapshots, at the least, per byte of its last one.
# Writing a snapshot and loading it in each predictor takes time in proportion to its size
# (45-200 ns a byte measured): an ARF(10) that learned one Agrawal concept (0.5 MB, 86 ms to
# dump and load, as long as ~60 of its labels take to learn) spent half its learning time on
# snapshots at one every 100 labels. One label per 500 bytes keeps them under a tenth (1,000
# left a seventh). The default search space's models (1-70 KB) stay near publish_every: on
# its 22 benchmark streams, served accuracy moved by at most 0.004. Bytes, not seconds: the
# labels at which predictors get a new copy, hence what they serve, are the same in every run
# (the learner's bound in seconds, publish_seconds, serves a quiet stream; a backtest has none).
SNAPSHOT_BYTES_PER_LABEL = 500
# Bytes from which the learner goes on with a copy of a model's snapshot rather than the model.
# A model that learns for long lies scattered among what everything else in the process made
# meanwhile (the predictors' copies, the messages), and learning walks all of it: an ARF(10) in
# the loop learned 1.12-1.35 times slower than alone on a loaded machine, copies of its
# snapshots 0.94-1.02 times (10,000 events; quiet, 1.17 and 1.11). A copy costs a load of the
# snapshot, 35-90 ns a byte: 16-45 us a label at one snapshot per SNAPSHOT_BYTES_PER_LABEL.
# Worth it for ensembles, which learn for hundreds of us a label and are the big models, not
# for a tree learning for tens. The copy's strings are its own objects, not the events' feature
# names it goes on learning with: it pickles 1-2 % bigger than the model would have, and its
# later snapshots come a few labels later (the same labels in every run).
COPIED_FROM_BYTES = 200_000


class Checkpoints:
    """The learner's checkpoint, metrics and race records for one stream."""

    def __init__(self, runtime: Runtime, stream: StreamConfig, lease: Lease | None = None) -> None:
        """``lease`` fences every write; without one, checkpoints can only be read."""
        self.store = runtime.store
        self.stream = stream
        self._lease = lease
        self.signer = signer_for(runtime.settings)
        self.registry = Registry.of(runtime, stream)
        self.changelog = runtime.changelog
        self.key = keys.checkpoint(stream.name)
        self._logged: dict[str | int, float] = {}  # when each was last copied to Kafka
        self._races: dict[tuple[int, int], dict[str, int | float]] = {}  # as last written
        self._snapshots: dict[int, tuple[int, int]] = {}  # version -> (labels, bytes) at its last

    def save(self, state: LearnerState, *, urgent: bool = False) -> None:
        """Write ``state`` in one SET, only while this learner holds the lease (LeaseLost); copy
        it to Kafka when ``urgent`` or when the last copy is LOG_SPACING seconds old."""
        blob = self.signer.sign(dumps(state))
        self.lease.fenced(lambda pipe: pipe.set(self.key, blob))
        if self._due("checkpoint", urgent):
            self.changelog.set(self.key, blob, order=self.lease.epoch)
        # Set only here: a series of 0 before the first checkpoint would read as a very old one.
        CHECKPOINT_TIMESTAMP.labels(self.stream.name).set(time.time())

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            raise MeanderError("these checkpoints were opened to be read: writing needs the lease")
        return self._lease

    def load(self) -> LearnerState | None:
        blob = self.store.get(self.key)
        if blob is None:
            return None
        state = loads(self.signer.verify(blob))
        if not isinstance(state, LearnerState):
            return None
        return state

    def publish_models(
        self, state: LearnerState, *, decided: bool = False, overdue: bool = False
    ) -> bool:
        """Snapshots of the champion and the challengers for the predictors, the metrics, and
        the races that changed, in one fenced write.

        A model that learned nothing since this learner's last snapshot of it is not written
        again; nor, unless a decision was just made or what it learned is ``overdue`` (it has
        waited ``publish_seconds``), one that learned fewer labels since than its last
        snapshot's bytes / ``SNAPSHOT_BYTES_PER_LABEL``. A model whose snapshot has
        ``COPIED_FROM_BYTES`` or more goes on as that snapshot's copy, which learns faster.
        Returns whether every model is shared as of now, none left for later by its size."""
        shared = {state.champion} | {c for (c, b) in state.races if b == state.champion}
        due: dict[int, Any] = {}
        whole = True
        for version in sorted(shared):
            last = self._snapshots.get(version)
            if last is not None:
                learned = state.labels - last[0]
                small = learned < last[1] // SNAPSHOT_BYTES_PER_LABEL
                if learned == 0 or (small and not (decided or overdue)):
                    whole = whole and learned == 0
                    continue
            due[version] = state.models[version]
        report = metrics(state)
        key = keys.metrics(self.stream.name)
        races = self._changed_races(state)

        def also(pipe: Pipeline[bytes]) -> None:
            self._write_races(pipe, state, races)
            pipe.set(key, orjson.dumps(report))

        # One round trip, one check of the lease, for what used to take one per model, one for
        # the metrics and one for the races.
        logged = [version for version in due if self._due(version, urgent=False)]
        written = self.registry.snapshots(due, fence=self.lease, logged=logged, also=also)
        for version, snapshot in written.items():
            self._snapshots[version] = (state.labels, snapshot.size)
            if snapshot.size >= COPIED_FROM_BYTES:
                state.models[version] = loads(snapshot.pickled)
        self._snapshots = {v: at for v, at in self._snapshots.items() if v in shared}
        self._races_written(state, races)
        set_model_metrics(
            self.stream.name, report["versions"], report["served"].get("champion", {})
        )
        return whole

    def write_races(self, state: LearnerState) -> None:
        """Write the races that changed since this learner last wrote them (a step that
        learned no label changes none, and costs no round trip)."""
        changed = self._changed_races(state)
        if not changed:
            return
        self.lease.fenced(lambda pipe: self._write_races(pipe, state, changed))
        self._races_written(state, changed)

    def _changed_races(self, state: LearnerState) -> dict[tuple[int, int], dict[str, int | float]]:
        changed: dict[tuple[int, int], dict[str, int | float]] = {}
        for pair, race in state.races.items():
            record = race.to_dict()
            if self._races.get(pair) != record:
                changed[pair] = record
        return changed

    def _write_races(
        self,
        pipe: Pipeline[bytes],
        state: LearnerState,
        changed: dict[tuple[int, int], dict[str, int | float]],
    ) -> None:
        if not changed:
            return
        for (challenger, baseline), record in changed.items():
            key = keys.race(self.stream.name, challenger, baseline)
            pipe.hset(key, mapping=dict(record))  # type: ignore[arg-type]
            pipe.expire(key, 86_400)  # a decided race is deleted; a forgotten one fades
        if state.last_event is not None:
            pipe.set(keys.last_event(self.stream.name), state.last_event)

    def _races_written(
        self, state: LearnerState, changed: dict[tuple[int, int], dict[str, int | float]]
    ) -> None:
        self._races = {pair: self._races.get(pair, {}) for pair in state.races} | changed

    def forget(self) -> None:
        """After letting go of the stream: what this learner wrote (races, snapshots) may be
        another's since."""
        self._races = {}
        self._snapshots = {}

    def _due(self, what: str | int, urgent: bool) -> bool:
        now = time.monotonic()
        if urgent or now - self._logged.get(what, -LOG_SPACING) >= LOG_SPACING:
            self._logged[what] = now
            return True
        return False


def metrics(state: LearnerState) -> dict[str, Any]:
    """What the learner knows of every live version and of what was served, as JSON."""
    return {
        "champion": state.champion,
        "labels": state.labels,
        "pending": len(state.join),
        "expired": state.join.expired,
        "held": len(state.join.held),  # labels read before their event, waiting for it
        "versions": {str(v): m.report() for v, m in state.metrics.items() if v in state.models},
        "served": {key: m.report() for key, m in state.served.items()},
        "counts": dict(state.counts),
    }


def initial_state(
    runtime: Runtime, stream: StreamConfig, registry: Registry, notices: Any, lease: Lease
) -> LearnerState:
    """A fresh state around the registry's champion, registering one from the config if none."""
    champion = registry.champion()
    if champion is None:
        model = build_model(stream.model)
        check_task(model, stream.task)
        why = "initial champion from the stream's configuration"
        version = registry.register(
            model,
            spec=spec_text(stream.model),
            cause={"reason": why},
            config_hash=config_hash(stream),
            fence=lease,
        ).version
        # Its announcement is queued in the promotion's transaction: a learner killed before
        # it announced the champion (its successor finds one, and does not) leaves it to the
        # trainer, which publishes it under the same id.
        queued = [notices.queued_promotion(version, why)]

        def queue(pipe: Pipeline[bytes], _: int | None) -> None:
            registry.unannounced.add(pipe, queued)

        registry.promote(version, reason=why, fence=lease, also=queue)
        notices.promoted(version, None, why, {})
        registry.unannounced.done(queued)
        champion = version
    else:
        model, _ = registry.load(champion)
    state = LearnerState.start(
        stream.task,
        champion=champion,
        model=model,
        detector=build_detector(stream.drift.concept_detector),
        ttl_seconds=stream.label_window.ttl_seconds,
        max_pending=stream.label_window.max_pending,
        kept=stream.kept_labels,
        race_window=stream.promotion.min_samples,
        rollback_window=stream.promotion.rollback_window,
        rollback_tolerance=stream.promotion.rollback_tolerance,
    )
    for challenger in registry.challengers():
        state.add_challenger(challenger, registry.load(challenger)[0])
    return state
