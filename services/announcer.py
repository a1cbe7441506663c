"""The service's stand-in for an absent trainer: it announces the decisions left unannounced.

A manual promotion or rollback through the API is published at once; when the broker does not
take it, the API answers 202 and the decision waits in the registry
(:mod:`meander.models.unannounced`) for the trainer, which publishes every pending decision at
each step. A deployment that runs the service and no trainer (the API to serve and override a
model that learns, no automatic retraining) left them pending for good: the learner never
followed them, the predictors served the new champion while the learner trained the old one.

So each service process also publishes the decisions that have waited ``grace_seconds`` (a
running trainer has taken them by then), oldest first, under their own ids, and drops them once
the broker has them. One may be announced twice, by a trainer and a service racing for it, under
one id: the notifier tells each subscriber of an id once, and the learner following a decision
it follows already changes nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from meander import keys
from meander.bus import Outbox
from meander.component import Component
from meander.models.registry_writes import RegistryWrites
from meander.models.unannounced import Herald, Unannounced
from meander.runtime import Runtime
from meander.telemetry import announce

__all__ = ["Announcer"]

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0  # a running trainer announces a decision within a step or two


class Announcer(Component):
    """Publishes every configured stream's decisions left unannounced for ``grace_seconds``,
    looking every ``every`` seconds."""

    name = "announcer"

    def __init__(
        self, runtime: Runtime, *, grace_seconds: float = GRACE_SECONDS, every: float = 1.0
    ) -> None:
        # The queues alone, not the registries: it reads no model, so it needs no signing key.
        outbox = Outbox(runtime.bus)
        self.heralds = [
            Herald(
                Unannounced(
                    RegistryWrites(
                        runtime.store, s.name, keys.registry(s.name), guard=runtime.guard
                    ),
                    runtime.changelog,
                ),
                outbox,
            )
            for s in runtime.settings.streams
        ]
        self.grace = timedelta(seconds=grace_seconds)
        self.every = every
        self._looked = float("-inf")

    def step(self, timeout: float = 0.0) -> int:
        if time.monotonic() - self._looked < self.every:
            time.sleep(min(timeout, self.every))
            return 0
        self._looked = time.monotonic()
        return sum(self._announce(herald) for herald in self.heralds)

    def _announce(self, herald: Herald) -> int:
        """Publish a stream's decisions once the oldest has waited long enough, all of them, in
        the order made (a later one must not go before it)."""
        pending = herald.queue.pending()
        due = datetime.now(UTC) - self.grace
        if not pending or pending[0].time > due:
            return 0
        announced = herald.publish(pending)
        announce("service", [announcement.event for announcement in announced], log)
        return len(announced)
