"""The models a predictor serves, and their answers to a batch of events.

A :class:`Lineup` holds the registry's champion and challengers, each at the revision the
registry last said. :meth:`Lineup.refresh` takes the registry's heads (one round trip, asked by
the predictor before a batch), loads whatever version or revision changed and drops what left,
so a new champion serves from the next batch on without a restart. A version that cannot be
loaded keeps the copy being served, and says so.

:meth:`Lineup.answers` scores a batch with one version: with River's ``*_many`` from
:data:`SCORE_MANY_FROM` events, else one call each; what the model cannot answer (an error,
a NaN) is None, with the reason.

>>> from meander.config import StreamConfig
>>> from meander.models.signing import Signer
>>> from meander.models.specs import build_model
>>> from meander.store import memory_store
>>> stream = StreamConfig(name="s", task="binary", features={"x": "numeric"})
>>> registry = Registry(memory_store(), "s", Signer(b"sixteen-byte-key"))
>>> model = build_model("tree.HoeffdingTreeClassifier")
>>> model.learn_one({"x": 1.0}, True)
>>> version = registry.register(model, spec="tree.HoeffdingTreeClassifier").version
>>> registry.promote(version)
>>> lineup = Lineup(registry, stream)
>>> lineup.refresh(registry.heads()), lineup.champion == version
(True, True)
>>> failed = {}
>>> [answer[0] for answer in lineup.answers(version, [{"x": 1.0}, {"x": 5.0}], failed)], failed
([True, True], {})
"""

from __future__ import annotations

import logging
from typing import Any

from meander.config import StreamConfig
from meander.exceptions import RegistryError
from meander.models.inference import Scored, diverged, predict_many, predict_one
from meander.models.registry import Heads, Registry

__all__ = ["SCORE_MANY_FROM", "Lineup"]

log = logging.getLogger(__name__)
# Building the DataFrame for River's *_many costs about 1.4 ms whatever the batch; a scaled
# logistic regression scores one event in about 5 µs. Below a few hundred events, one call
# each is cheaper, and under light load the predictor's batches are a handful of events.
SCORE_MANY_FROM = 256


class Lineup:
    """The champion and challengers of one stream, as loaded from its registry."""

    def __init__(self, registry: Registry, stream: StreamConfig) -> None:
        self.registry, self.stream = registry, stream
        self.models: dict[int, tuple[Any, int]] = {}  # version: (model, revision)
        self.champion: int | None = None
        self.challengers: tuple[int, ...] = ()
        self.published = False  # whether the stream ever had a model that learned

    def refresh(self, heads: Heads) -> bool:
        """Load whatever version or revision changed; False while there is no champion."""
        wanted = ([heads.champion] if heads.champion is not None else []) + list(heads.challengers)
        self._load(
            [
                version
                for version in wanted
                if (cached := self.models.get(version)) is None
                or cached[1] != heads.revisions.get(version, 0)
            ]
        )
        for version in set(self.models) - set(wanted):
            del self.models[version]
        self.champion = heads.champion if heads.champion in self.models else None
        self.challengers = tuple(v for v in heads.challengers if v in self.models)
        self.published = heads.published
        return self.champion is not None

    def revision(self) -> tuple[int, int] | None:
        """The champion's version and revision, None without a champion."""
        if self.champion is None:
            return None
        return self.champion, self.models[self.champion][1]

    def answers(
        self, version: int, xs: list[dict[str, Any]], failed: dict[int, str]
    ) -> list[Scored | None]:
        """``version``'s answers; where it cannot answer, None, and the reason in ``failed``."""
        model, task = self.models[version][0], self.stream.task
        batch: list[Scored | None]
        try:
            if len(xs) >= SCORE_MANY_FROM:
                batch = list(predict_many(model, xs, task))
            else:
                batch = [predict_one(model, x, task) for x in xs]
        except Exception:  # any model error: find the events at fault one by one
            batch = self._one_by_one(version, xs, failed)
        return _finite(version, batch, failed)

    def _load(self, changed: list[int]) -> None:
        try:
            # What the learner shares at once (a step's snapshots) comes in one round trip.
            if changed:
                self.models.update(self.registry.load_many(changed))
            return
        except RegistryError:
            pass  # one by one, to keep what loads and say which does not
        for version in changed:
            try:
                self.models[version] = self.registry.load(version)
            except RegistryError as error:
                # Keep serving the copy we have rather than stop; say why loudly.
                self._warn(logging.ERROR, f"cannot load v{version}: {error}")

    def _one_by_one(
        self, version: int, xs: list[dict[str, Any]], failed: dict[int, str]
    ) -> list[Scored | None]:
        model, task = self.models[version][0], self.stream.task
        answers: list[Scored | None] = []
        for index, x in enumerate(xs):
            try:
                answers.append(predict_one(model, x, task))
            except Exception as error:
                answers.append(None)
                problem = f"model v{version} cannot score this event: {type(error).__name__}"
                failed[index] = f"{problem}: {error}"[:300]
                self._warn(logging.WARNING, failed[index])
        return answers

    def _warn(self, level: int, text: str) -> None:
        name = self.stream.name
        log.log(level, "%s: %s", name, text, extra={"stream": name})


def _finite(
    version: int, answers: list[Scored | None], failed: dict[int, str]
) -> list[Scored | None]:
    """``answers`` less those that are not numbers (a diverged model's NaN), which are failures
    to score, as an error would be: JSON has no NaN, so each would be published as null, which
    no reader takes for a prediction."""
    for index, answer in enumerate(answers):
        if answer is not None and (why := diverged(answer)) is not None:
            answers[index] = None
            failed[index] = f"model v{version} cannot score this event: {why}"
    return answers
