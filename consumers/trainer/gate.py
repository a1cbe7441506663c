"""The trainer's validation gate: every step it judges the races the learner keeps (promote,
reject, or wait), and watches a new champion against the one it replaced (roll back, or validate
it at the end of the watch).

Each decision is made in one Redis transaction with its announcement
(:mod:`meander.models.unannounced`), and, for a promotion, the watch of the new champion; the
trainer publishes the announcements (:meth:`~meander.consumers.trainer.trainer.Trainer.step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from meander import keys
from meander.config import StreamConfig
from meander.events import ModelEvent, decision
from meander.models.race import RecentRace
from meander.models.registry import Registry
from meander.models.unannounced import Announcement
from meander.models.validation import Verdict, judge, rollback_check
from meander.runtime import Runtime

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["SOURCE", "Gate"]

SOURCE = "/meander/trainer"


class Gate:
    """Promotions, rejections and rollbacks of one stream's models."""

    def __init__(self, runtime: Runtime, stream: StreamConfig, registry: Registry) -> None:
        self.runtime, self.stream, self.registry = runtime, stream, registry
        self.store = runtime.store
        self.watch_key = keys.watch(stream.name)

    def judge(self) -> int:
        """Judge the watch and the races at hand; how many decisions were made."""
        champion = self.registry.champion()
        if champion is None:
            return 0
        decided = self._judge_watch(champion)
        if decided:
            # After a roll back the races on hand are against the demoted champion: judge them
            # next step, against the champion as it is then.
            return decided
        # Every race is judged at every step: its bet stays sound however often it is looked
        # at, and the significance is shared by the request's pool of challengers, so an equal
        # one is promoted no more often than the significance allows.
        promotion, rivals = self.stream.promotion, self.stream.learning.max_challengers
        verdicts: list[tuple[int, Verdict, RecentRace]] = []
        for challenger in self.registry.challengers():
            race = self.race(challenger, champion)
            if race is not None:
                verdicts.append((challenger, judge(race, promotion, rivals=rivals), race))
        winners = [v for v in verdicts if v[1].decision == "promote"]
        if winners:
            best = max(winners, key=lambda v: float(v[1].evidence.get("gain", 0.0)))
            self._promote(best[0], champion, best[1], best[2])
            return decided + 1
        for challenger, verdict, _ in verdicts:
            if verdict.decision == "reject":
                self.reject(challenger, verdict)
                decided += 1
        return decided

    def _promote(self, challenger: int, champion: int, verdict: Verdict, race: RecentRace) -> None:
        """Promote ``challenger``, its announcements and the watch of it in one transaction.
        The other challengers race on, now against the new champion: one of them may still be
        the better model once it has learned a little more."""
        evidence = dict(verdict.evidence) | {"stage": "gate"}
        at, reason = self._at_event(), verdict.reason
        metrics = {
            "challenger_score": race.challenger_score,
            "champion_score": race.baseline_score,
            "n": race.n,
        }
        watch = b""

        def decided(pipe: Pipeline[bytes], previous: int | None) -> None:
            nonlocal watch
            validated = self._event("validated", challenger, champion, reason, evidence, at)
            promoted = self._event("promoted", challenger, previous, reason, evidence, at)
            self.registry.unannounced.add(pipe, self._announced(validated, promoted))
            watch = orjson.dumps({"new": challenger, "old": previous})
            pipe.set(self.watch_key, watch)

        self.registry.promote(challenger, metrics=metrics, reason=reason, also=decided)
        self.runtime.changelog.set(self.watch_key, watch)

    def reject(self, challenger: int, verdict: Verdict) -> None:
        """Reject ``challenger``, with its announcement, in one transaction."""
        evidence, at = dict(verdict.evidence), self._at_event()

        def decided(pipe: Pipeline[bytes], current: int | None) -> None:
            event = self._event("rejected", challenger, current, verdict.reason, evidence, at)
            self.registry.unannounced.add(pipe, self._announced(event))

        self.registry.reject(challenger, verdict.reason, also=decided)

    def _judge_watch(self, champion: int) -> int:
        raw = self.store.get(self.watch_key)
        if raw is None:
            return 0
        watch = orjson.loads(raw)
        new, old = int(watch["new"]), int(watch["old"])
        if new != champion:
            self._unwatch()  # someone else changed the champion since
            return 0
        race = self.race(new, old)
        verdict = None if race is None else rollback_check(race, self.stream.promotion)
        if verdict is None or verdict.decision == "continue":
            return 0
        evidence = dict(verdict.evidence) | {"stage": "rollback_window"}
        race_key, at = keys.race(self.stream.name, new, old), self._at_event()

        def ended(pipe: Pipeline[bytes]) -> None:
            pipe.delete(race_key, self.watch_key)

        if verdict.decision == "roll_back":
            event = self._event("rolled_back", old, new, verdict.reason, evidence, at)
            also = self._announcing_in(event, ended)
            self.registry.roll_back(old, reason=verdict.reason, also=also)
        else:
            event = self._event("validated", new, old, verdict.reason, evidence, at)
            self.registry.unannounced.write(self._announced(event), also=ended)
        self.runtime.changelog.delete(self.watch_key)
        return 1

    def _unwatch(self) -> None:
        self.store.delete(self.watch_key)
        self.runtime.changelog.delete(self.watch_key)

    def race(self, challenger: int, baseline: int) -> RecentRace | None:
        """The race the learner keeps of ``challenger`` against ``baseline``, if any."""
        raw = self.store.hgetall(keys.race(self.stream.name, challenger, baseline))
        return RecentRace.from_dict(raw) if raw else None  # type: ignore[arg-type]

    def _at_event(self) -> str | None:
        raw = self.store.get(keys.last_event(self.stream.name))
        return raw.decode() if raw else None

    def _event(
        self,
        action: str,
        version: int,
        previous: int | None,
        reason: str,
        evidence: dict[str, Any],
        at: str | None,
    ) -> ModelEvent:
        return decision(self.stream.name, action, version, previous, reason, evidence, at)

    def _announced(self, *events: ModelEvent) -> list[Announcement]:
        return [Announcement.of(event, source=SOURCE) for event in events]

    def _announcing_in(
        self, event: ModelEvent, also: Callable[[Pipeline[bytes]], object]
    ) -> Callable[[Pipeline[bytes], int | None], None]:
        """Writes that queue ``event``'s announcement, and ``also``'s, in a change's transaction."""

        def write(pipe: Pipeline[bytes], _: int | None) -> None:
            self.registry.unannounced.add(pipe, self._announced(event))
            also(pipe)

        return write
