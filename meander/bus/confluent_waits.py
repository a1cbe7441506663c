"""librdkafka's calls that have no time-out of their own, waited for at most the bus's.

librdkafka's synchronous commit waits for the group coordinator's answer for as long as that
takes, and a consumer's close waits for a commit still under way. With the broker paused
(SIGSTOP: connections stay open, nothing is answered, as in a network partition) a commit
returned only when the broker was resumed, 370 s later, and a close called meanwhile 69 s
later; a notifier told to stop (SIGTERM) during such an outage was still in its step minutes
later. Here each such call runs in a thread of its own and is waited for at most ``timeout``.

A commit given up on this way may still land once the broker answers, or never: either way the
group reads on from the last commit that landed, which is never past what was handled (at least
once). Commits stay in order: the next one waits for the one left behind first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaException

from meander.exceptions import BusUnavailable

__all__ = ["Waits", "close_within"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Waits:
    """Calls into one librdkafka client, one at a time, each waited for at most ``timeout``.

    A call that outlasts it raises :class:`BusUnavailable` and goes on in its thread; the next
    call waits for that one first, within its own ``timeout``.

    >>> waits = Waits(0.1, "group g")
    >>> waits.call("commit", lambda: "committed")
    'committed'
    >>> held = threading.Event()
    >>> try:
    ...     waits.call("commit", held.wait)
    ... except BusUnavailable as error:
    ...     print(error)
    group g could not commit within 0.1 s: the broker does not answer
    >>> held.set()
    >>> waits.call("commit", lambda: "committed")
    'committed'
    """

    def __init__(self, timeout: float, owner: str) -> None:
        self._timeout = timeout
        self._owner = owner
        self._behind: threading.Thread | None = None  # a call that outlasted its wait

    def waiting(self) -> bool:
        """Whether a call that outlasted its wait still goes on."""
        return self._behind is not None and self._behind.is_alive()

    def call(self, what: str, call: Callable[[], T]) -> T:
        """``call()``'s answer or error, or BusUnavailable after ``timeout`` (it goes on)."""
        deadline = time.monotonic() + self._timeout
        if self._behind is not None:
            self._behind.join(self._timeout)
            if self._behind.is_alive():
                raise self._unanswered(what, "an earlier call still waits for the broker")
            self._behind = None
        outcome: _Outcome[T] = _Outcome(call)
        thread = threading.Thread(target=outcome.run, name=f"{self._owner}: {what}", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            self._behind = thread
            raise self._unanswered(what, "the broker does not answer")
        return outcome.answer()

    def _unanswered(self, what: str, why: str) -> BusUnavailable:
        return BusUnavailable(f"{self._owner} could not {what} within {self._timeout:g} s: {why}")


class _Outcome(Generic[T]):
    """What a call gave: its answer or its error, taken in another thread."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._answer: T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._answer = self._call()
        except BaseException as error:  # handed to the caller, in its thread
            self._error = error

    def answer(self) -> T:
        if self._error is not None:
            raise self._error
        return self._answer  # type: ignore[return-value]  # None only when call() gave None


def close_within(client: Any, timeout: float, what: str) -> None:
    """Close ``client`` (librdkafka's consumer), waiting for it at most ``timeout``: one that
    stopped rejoining its group may never finish leaving it, and one whose commit waits for a
    broker that does not answer waits with it. Left behind, it must not hold up a process
    that stops, nor the client that replaces it."""

    def close() -> None:
        try:
            client.close()
        except (KafkaException, RuntimeError) as closing:
            log.warning("closing %s: %s", what, closing)

    closing = threading.Thread(target=close, name=f"closing {what}", daemon=True)
    closing.start()
    closing.join(timeout)
    if closing.is_alive():
        log.warning("%s did not close within %.0f s; left behind", what, timeout)
