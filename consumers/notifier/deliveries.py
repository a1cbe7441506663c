"""Deliveries: getting notices to webhooks despite flaky servers, and saying how each went.

Each webhook has its own delivery thread and bounded outbox, so a slow or dead endpoint delays
only itself, and each endpoint receives notices in the order they were read. A delivery is
retried on connection errors, 5xx and 429 with exponential backoff; every finished delivery
becomes an :class:`Outcome` (for the subscription's delivery records), and whatever finally
failed is also handed back with the reason, for the dead-letter topic.

Subscriptions come and go while the notifier runs: :meth:`Webhooks.subscribe` replaces them,
keeping the outbox (and the queued notices) of each that is still there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from meander.config import NotifierSettings
from meander.consumers.notifier.poster import Poster
from meander.consumers.notifier.targets import Resolver
from meander.consumers.notifier.webhooks import Notice, Webhook
from meander.telemetry.metrics import WEBHOOK_DELIVERIES

__all__ = ["Delivery", "Outcome", "Webhooks"]

log = logging.getLogger(__name__)
_DELIVERED, _FAILED = WEBHOOK_DELIVERIES.labels("delivered"), WEBHOOK_DELIVERIES.labels("failed")


class Delivery(BaseModel):
    """How one event's delivery to a subscription ended, as its records keep it."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    status: Literal["delivered", "failed"]
    attempts: int = Field(ge=0, description="0 when the notifier stopped before trying")
    last_error: str | None = Field(description="what went wrong on the last attempt")
    http_status: int | None = Field(description="the last answer's status, if any came")
    at: datetime = Field(description="when the delivery ended")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery of ``notice`` to ``webhook`` ended: ``error`` (the last attempt's) is
    None when it was delivered; ``attempts`` is 0 when none was made. ``left`` says why a
    delivery was left unfinished: "deleted" (its subscription was, so nobody wants it) or
    "stopped" (the notifier stopped: whoever reads the event next makes it)."""

    webhook: Webhook
    notice: Notice
    attempts: int
    error: str | None
    http_status: int | None
    finished_at: float = field(default_factory=time.time)
    left: Literal["deleted", "stopped"] | None = None

    @property
    def reason(self) -> str:
        """Why it failed, for the dead-letter topic and the log."""
        if self.attempts == 0:
            return f"not delivered: {self.error}"
        times = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
        return f"webhook {self.webhook.label} failed after {times}: {self.error}"

    def record(self) -> Delivery:
        """The delivery record of this outcome."""
        return Delivery(
            event_id=self.notice.event_id,
            status="delivered" if self.error is None else "failed",
            attempts=self.attempts,
            last_error=self.error,
            http_status=self.http_status,
            at=datetime.fromtimestamp(self.finished_at, UTC),
        )


@dataclass(eq=False)
class _Outbox:
    webhook: Webhook
    pending: deque[Notice] = field(default_factory=deque)
    busy: bool = False
    retired: bool = False
    thread: threading.Thread | None = None


class Webhooks:
    """The configured webhooks, the subscriptions, and their delivery threads.

    The caller keeps within :meth:`room` (each notice adds at most one delivery per webhook), so
    :meth:`submit` never blocks; :meth:`take_failures` and :meth:`take_outcomes` hand back what
    happened since they were last called.
    """

    def __init__(
        self,
        settings: NotifierSettings,
        *,
        backoff: float = 0.5,
        capacity: int = 1_000,
        resolve: Resolver | None = None,
        on_delivered: Callable[[Webhook, Notice], None] | None = None,
    ) -> None:
        self.retries = settings.retries
        self.timeout = settings.timeout_seconds
        self.backoff = backoff
        self.capacity = capacity
        self.delivered = 0
        self.failed = 0
        self._configured = [_Outbox(Webhook.from_settings(hook)) for hook in settings.webhooks]
        self._subscribed: dict[str, _Outbox] = {}
        self._poster = Poster(self.timeout, resolve=resolve)
        # Told in the delivery's own thread the moment the receiver said yes, so that the
        # window in which a crash makes a delivery twice stays a few milliseconds wide.
        self._on_delivered = on_delivered
        self._changed = threading.Condition()
        self._outcomes: list[Outcome] = []
        self._stopping = threading.Event()

    def subscribe(self, webhooks: Sequence[Webhook]) -> None:
        """Deliver from now on to ``webhooks`` (keyed by subscription) besides the configured.

        A subscription that is gone gets nothing more: its queued notices are dropped, as
        its owner asked (each an outcome left "deleted"), and a delivery under way makes no
        further attempt.
        """
        wanted = {hook.subscription: hook for hook in webhooks if hook.subscription is not None}
        with self._changed:
            for key, box in list(self._subscribed.items()):
                if key not in wanted:
                    if box.pending:
                        dropped = len(box.pending)
                        log.info("subscription %s deleted: %d queued notices dropped", key, dropped)
                    while box.pending:
                        self._leave(box.webhook, box.pending.popleft(), "deleted")
                    box.retired = True
                    del self._subscribed[key]
            for key, hook in wanted.items():
                if key in self._subscribed:
                    self._subscribed[key].webhook = hook  # the next delivery uses the change
                else:
                    self._subscribed[key] = _Outbox(hook)
            self._changed.notify_all()

    def room(self) -> int:
        """How many notices can be submitted now without passing any outbox's capacity."""
        with self._changed:
            return self._room()

    def wait_for_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every outbox has room for one more."""
        with self._changed:
            return self._changed.wait_for(lambda: self._room() > 0, timeout)

    def targets(self, notice: Notice) -> list[Webhook]:
        """The webhooks that want ``notice`` now."""
        with self._changed:
            return [box.webhook for box in self._outboxes() if box.webhook.accepts(notice)]

    def submit(self, notice: Notice, webhooks: Sequence[Webhook] | None = None) -> int:
        """Queue ``notice`` for ``webhooks`` (by default every one that wants it); returns
        how many it was queued for. One that is gone meanwhile (a subscription deleted) gets
        an outcome left "deleted" instead."""
        with self._changed:
            if self._stopping.is_set():
                raise RuntimeError("the webhooks are closed; submit before close()")
            boxes = {box.webhook.key: box for box in self._outboxes()}
            chosen = self.targets(notice) if webhooks is None else webhooks
            queued = 0
            for hook in chosen:
                box = boxes.get(hook.key)
                if box is None:
                    self._leave(hook, notice, "deleted")
                    continue
                box.pending.append(notice)
                queued += 1
                if box.thread is None:
                    box.thread = threading.Thread(
                        target=self._run, args=(box,), name=f"webhook {box.webhook.label}"
                    )
                    box.thread.daemon = True  # an endpoint that hangs must not hang the exit
                    box.thread.start()
            self._changed.notify_all()
        return queued

    def take_outcomes(self) -> list[Outcome]:
        """How every delivery ended (or was left), since the last call."""
        with self._changed:
            outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is queued or being delivered."""
        with self._changed:
            return self._changed.wait_for(self._idle, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then leave the rest: each is an
        outcome left "stopped", and a delivery under way makes no further attempt."""
        self.wait_idle(timeout)
        with self._changed:
            self._stopping.set()
            boxes = self._outboxes()
            left = sum(len(box.pending) for box in boxes)
            if left:
                log.info("%d queued deliveries left for whoever reads their events next", left)
            for box in boxes:
                while box.pending:
                    self._leave(box.webhook, box.pending.popleft(), "stopped")
            self._changed.notify_all()
        for box in boxes:
            if box.thread is not None:
                box.thread.join(self.timeout + 1.0)

    def _outboxes(self) -> list[_Outbox]:
        return self._configured + list(self._subscribed.values())

    def _room(self) -> int:
        free = (self.capacity - len(box.pending) for box in self._outboxes())
        return min(free, default=self.capacity)

    def _idle(self) -> bool:
        return not any(box.pending or box.busy for box in self._outboxes())

    def _leave(self, webhook: Webhook, notice: Notice, why: Literal["deleted", "stopped"]) -> None:
        self._outcomes.append(Outcome(webhook, notice, 0, None, None, left=why))

    def _finish(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        if outcome.left is not None:
            return
        if outcome.error is None:
            self.delivered += 1
            _DELIVERED.inc()
        else:
            self.failed += 1
            _FAILED.inc()

    def _run(self, box: _Outbox) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: box.pending or box.retired or self._stopping.is_set()
                )
                if not box.pending:
                    return
                notice = box.pending.popleft()
                box.busy = True
                self._changed.notify_all()
            try:
                outcome = self._deliver(box, notice)
            except Exception as error:  # a bug in one delivery must not end the thread
                log.exception("webhook %s: delivery crashed", box.webhook.label)
                outcome = Outcome(box.webhook, notice, 1, f"delivery crashed: {error!r}", None)
            with self._changed:
                box.busy = False
                self._finish(outcome)
                self._changed.notify_all()

    def _delivered(self, webhook: Webhook, notice: Notice) -> None:
        if self._on_delivered is None:
            return
        try:
            self._on_delivered(webhook, notice)
        except Exception as error:  # the outcome still says so, and is handled later
            log.warning(
                "webhook %s: delivery of %s not noted yet: %s",
                webhook.label,
                notice.event_id,
                error,
            )

    def _deliver(self, box: _Outbox, notice: Notice) -> Outcome:
        attempts = 0
        while True:
            attempts += 1
            webhook = box.webhook  # each attempt with the subscription as it is now
            error, status, retry = self._poster.post(webhook, notice)
            if error is None:
                self._delivered(webhook, notice)
                return Outcome(webhook, notice, attempts, None, status)
            if box.retired:
                return Outcome(webhook, notice, attempts, error, status, left="deleted")
            if not retry or attempts > self.retries:
                outcome = Outcome(webhook, notice, attempts, error, status)
                log.warning(
                    "event %s: %s",
                    notice.event_id,
                    outcome.reason,
                    extra={"stream": notice.stream, "event_id": notice.event_id},
                )
                return outcome
            if self._stopping.wait(self.backoff * 2 ** (attempts - 1)):
                return Outcome(webhook, notice, attempts, error, status, left="stopped")
