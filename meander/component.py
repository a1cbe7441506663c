"""The shape of every long-running stream processor, and the loop that drives them.

A component does its work in :meth:`Component.step`: read one batch, handle it, publish what
it decided, commit, and return how many messages it handled. Nothing in a step blocks for
longer than the ``timeout`` it is given, so one thread can drive many components in turn
(``meander run all``, the demo, the backtest) and one process can run a single component
(``meander run predictor``) with the same code.

>>> class Counter(Component):
...     name = "counter"
...     def __init__(self):
...         self.seen = 0
...     def step(self, timeout=0.0):
...         self.seen += 1
...         return 1 if self.seen < 3 else 0
>>> counter = Counter()
>>> drain([counter])
2
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

from meander.bus import Consumer, Message

__all__ = [
    "YOUNG_COLLECTION_EVERY",
    "Component",
    "collection_paused",
    "drain",
    "freeze_heap",
    "rewound_on_failure",
    "run_in_threads",
    "run_until_stopped",
    "stop_on_signals",
]

log = logging.getLogger(__name__)

YOUNG_COLLECTION_EVERY = 20_000
"""Allocations (of objects the collector tracks) between two collections of the youngest
generation in a component's process, once its heap is frozen. A step makes objects for each
message it reads (the message, its headers, the decoded event) and drops them when it ends;
collected every 700 allocations, each of them was walked by a collection or two first. A
kafka-python learner in one process (18,000 labels, loaded machine): 210 collections, 1.5 - 1.6
us of its 28 us of CPU a label; every 20,000, 3 - 4 collections, 0.6 - 0.7 us, as most objects
are freed by their reference count before any collection. What it holds back is at most
20,000 objects, and only those in reference cycles."""


class Component(ABC):
    """A stream processor driven one batch at a time."""

    name: ClassVar[str]

    @abstractmethod
    def step(self, timeout: float = 0.0) -> int:
        """Handle at most one batch, waiting at most ``timeout`` for it; returns how many
        messages were handled (0 when there was nothing to do)."""

    def close(self) -> None:  # noqa: B027 - most components hold nothing of their own
        """Release what the component holds; the bus and the store belong to the caller."""

    def working(self) -> bool:
        """Whether the component does its work now: its group gave it partitions, it holds
        its lease, it has a model to serve. True by default: a step ran."""
        return True


@contextmanager
def rewound_on_failure(consumer: Consumer, messages: Sequence[Message]) -> Iterator[None]:
    """Handle ``messages``; if that fails, rewind ``consumer`` to them before the error goes on.

    A step that fails after it consumed a batch would otherwise have the next step's commit
    pass over it: records neither handled nor dead-lettered, lost. Only failures outside the
    records (a broker or Redis that does not answer) should get here: a record that cannot be
    handled is dead-lettered with its reason, or it would be read and fail again for ever.
    """
    try:
        yield
    except BaseException:
        consumer.rewind(messages)
        raise


def drain(components: Sequence[Component], max_rounds: int = 1_000_000) -> int:
    """Step every component in turn until a whole round handles nothing; returns the total."""
    total = 0
    for _ in range(max_rounds):
        handled = sum(component.step(0.0) for component in components)
        if handled == 0:
            return total
        total += handled
    return total


def run_until_stopped(
    components: Sequence[Component], stop: threading.Event, *, idle_timeout: float = 0.2
) -> None:
    """Step the components in turn until ``stop`` is set, then close them.

    A failing step is logged and the loop goes on: a bad batch must never stop a component.
    When a whole round handled nothing, the next waits up to ``idle_timeout`` on each consume.
    What is alive is left out of later garbage collections (:func:`freeze_heap`) before the
    first round (libraries, clients, models), and again after the first round that handled
    something (connections, what it read): that collection then visits only what the round
    made. A learner whose first round read 20,000 events and predictions spent 474 ms in it
    with nothing frozen before, 115 ms with (loaded machine): a stall after its first labels.
    From then on the youngest generation is collected every :data:`YOUNG_COLLECTION_EVERY`
    allocations rather than 700 (see there); the thresholds are as before once it returns.
    """
    timeout = 0.0
    freeze_heap()
    frozen = False
    thresholds = gc.get_threshold()
    waiting = list(components)  # those not yet seen working since the process started
    try:
        while not stop.is_set():
            handled = 0
            for component in components:
                try:
                    handled += component.step(timeout / max(1, len(components)))
                    if component in waiting and component.working():
                        waiting.remove(component)
                        log.info("%s: working", component.name, extra={"working": True})
                except Exception:
                    log.exception("%s: step failed; carrying on", component.name)
                    time.sleep(min(1.0, idle_timeout))
            timeout = 0.0 if handled else idle_timeout
            if handled and not frozen:
                freeze_heap()
                gc.set_threshold(YOUNG_COLLECTION_EVERY, *thresholds[1:])
                frozen = True
    finally:
        gc.set_threshold(*thresholds)
        for component in components:
            component.close()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector paused, then as it was before.

    Building a component imports its libraries (River and scipy, kafka-python, redis,
    pydantic): some 120,000 objects, almost all alive for the whole process. The collector,
    triggered every 700 allocations, went over them 328 times during those imports, 0.18-0.22
    CPU-s of the 2.1-2.6 that a learner spent in them: a tenth of a restart, where a restart
    waits for a CPU. The little garbage they leave is collected once the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_heap() -> None:
    """Collect garbage once, then leave every object alive now out of later collections.

    A full collection visits every object the process holds: with River, pandas, pydantic and
    kafka-python loaded, over 200,000, which took 60-110 ms of CPU (seen as 850 ms on a loaded
    machine) in the middle of whatever step it fell in. Frozen, the libraries' and clients'
    objects are no longer visited; what is freed later is freed by reference counting as ever.
    """
    gc.collect()
    gc.freeze()


def run_in_threads(
    components: Sequence[Component], stop: threading.Event, *, idle_timeout: float = 0.2
) -> None:
    """Step each component in a thread of its own until ``stop`` is set; return when all ended.

    A slow step of one (a learner's checkpoint, a trainer's race) then never delays another's
    (a predictor's next batch). Group consumers no longer need it: every consume finishes a
    pending join (see :func:`meander.bus.kafka_consumer.finish_join`).
    """
    threads = [
        threading.Thread(
            target=run_until_stopped,
            args=([component], stop),
            kwargs={"idle_timeout": idle_timeout},
            name=f"meander {component.name}",
            daemon=True,
        )
        for component in components
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT set, so a component finishes its batch and exits."""
    stop = threading.Event()

    def _set(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _set)
    signal.signal(signal.SIGINT, _set)
    return stop
