"""Where the predictor's and the learner's time goes: pyinstrument over their steps, on Kafka.

``python -m benchmarks.hotpath.profile predictor|learner [--events N] [--rate R]`` prepares a
stream as the hot-path benchmark does, runs the component in this process, stepped as
``meander run`` steps it (no wait while there is work, 0.2 s when there is none), and prints
pyinstrument's call tree of the steps alone, then the pace and the CPU per event under the
profiler (``--no-profile``: the same run without it). The learner is profiled after its first
step, which reads every event and prediction already published; the champion's own
``learn_one`` is then timed alone on the same labels (River's part of each label's CPU). With
``--rate`` the predictor is profiled while a paced producer offers the events at ``R`` per
second (as the latency benchmark does): where a step's time goes at a given load, not over a
backlog. pyinstrument is not a dependency: ``pip install pyinstrument`` to use this.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from benchmarks.hotpath.latency import offer
from benchmarks.hotpath.stage import FEATURES, Stage, samples
from meander import topics
from meander.component import Component
from meander.consumers.learner.learner import Learner
from meander.consumers.predictor.predictor import Predictor
from meander.infra.kafka import LocalKafka
from meander.infra.redis import LocalRedis
from meander.runtime import Runtime

__all__ = ["main", "steps"]


def steps(component: Component, done: Callable[[], bool], idle_limit: int = 5) -> None:
    """Step ``component`` as ``meander run`` does until ``done()``, or ``idle_limit`` idle steps
    in a row; a failed step is reported and the loop goes on."""
    timeout, idle = 0.0, 0
    while not done() and idle < idle_limit:
        try:
            handled = component.step(timeout)
        except Exception as error:  # as run_until_stopped: a failed step does not end the run
            print(f"step failed: {error}")
            handled = 0
        idle = 0 if handled else idle + 1
        timeout = 0.0 if handled else 0.2


PROFILE = {"on": True}  # off with --no-profile: the same run, timed without pyinstrument


def _profiled(run: Callable[[], int]) -> None:
    if not PROFILE["on"]:
        started, cpu = time.perf_counter(), time.process_time()
        count = run()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        each = cpu * 1e6 / max(count, 1)
        print(f"{count:,} in {seconds:.2f} s ({count / seconds:,.0f}/s); {each:.1f} us of CPU each")
        return
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("pyinstrument is needed: .venv/bin/pip install pyinstrument") from None
    profiler = Profiler(interval=0.002)
    started, cpu = time.perf_counter(), time.process_time()
    profiler.start()
    count = run()
    profiler.stop()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(profiler.output_text(unicode=False, color=False))
    each = cpu * 1e6 / max(count, 1)
    print(f"{count:,} in {seconds:.1f} s under the profiler; {each:.0f} us of CPU each")


def _predictor(runtime: Runtime, stage: Stage, stream: str, events: int) -> None:
    stage.publish_events(stream, 0, events)
    predictor = Predictor(runtime, runtime.settings.streams[0])
    predictor.step(5.0)  # joins the group: not part of the profile
    before = predictor.handled

    def run() -> int:
        steps(predictor, lambda: predictor.handled >= events)
        return predictor.handled - before

    _profiled(run)
    predictor.close()


def _paced(runtime: Runtime, stage: Stage, stream: str, events: int, rate: float) -> None:
    predictor = Predictor(runtime, runtime.settings.streams[0])
    predictor.step(5.0)  # joins the group: not part of the profile
    importlib.import_module("pandas")  # as the first scoring of a batch would, once a process
    before = predictor.handled
    context = multiprocessing.get_context("spawn")
    out: Queue[Any] = context.Queue()
    offering = context.Process(
        target=offer,
        args=(stage.kafka, topics.events(stream), "P", rate, events / rate, out),
    )
    offering.start()

    deadline = time.monotonic() + events / rate + 30.0  # the producer's start is slow
    sent: list[int] = []

    def done() -> bool:
        if not sent and not out.empty():
            sent.append(out.get()[0])  # how many the producer offered, once it is through
        handled = predictor.handled - before
        return (bool(sent) and handled >= sent[0]) or time.monotonic() > deadline

    def run() -> int:
        steps(predictor, done, idle_limit=1_000_000)
        return predictor.handled - before

    try:
        _profiled(run)
    finally:
        offering.join(30)
        predictor.close()


def _learner(runtime: Runtime, stage: Stage, stream: str, events: int) -> None:
    stage.publish_events(stream, 0, events)
    predictor = Predictor(runtime, runtime.settings.streams[0])
    # Joining the group takes longer than five idle steps on confluent-kafka: without this
    # wait no event was scored, and the learner was profiled with no prediction to join.
    predictor.step(5.0)
    steps(predictor, lambda: predictor.handled >= events, idle_limit=50)
    predictor.close()
    stage.publish_feedback(stream, 0, events)
    learner = Learner(runtime, runtime.settings.streams[0])
    learner.step(0.0)
    before = learner.handled_labels

    def run() -> int:
        steps(learner, lambda: learner.handled_labels >= events)
        return learner.handled_labels - before

    _profiled(run)
    model = copy.deepcopy(learner.state.models[learner.state.champion]) if learner.state else None
    learner.close()
    if model is not None:
        _learn_one_alone(model, events)


def _learn_one_alone(model: Any, events: int) -> None:
    """The champion's own ``learn_one`` on the same labels, without the learner around it
    (a copy of the model as it ended): what is River's of each label's CPU time."""
    rows = [
        (dict(zip(FEATURES, x, strict=True)), bool(y))
        for _, chunk, labels in samples(0, events)
        for x, y in zip(chunk.tolist(), labels.tolist(), strict=True)
    ]
    cpu = time.process_time()
    for x, y in rows:
        model.learn_one(x, y)
    each = (time.process_time() - cpu) * 1e6 / max(len(rows), 1)
    print(f"the champion's learn_one alone on the same {len(rows):,} labels: {each:.1f} us each")


COMPONENTS: dict[str, Callable[[Runtime, Stage, str, int], None]] = {
    "predictor": _predictor,
    "learner": _learner,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath.profile")
    parser.add_argument("component", choices=sorted(COMPONENTS))
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=None, help="predictor: events offered/s")
    parser.add_argument("--no-profile", action="store_true", help="time the run, no profiler")
    args = parser.parse_args(argv)
    PROFILE["on"] = not args.no_profile
    with ExitStack() as stack:
        kafka = (
            os.environ.get("MEANDER_KAFKA_BOOTSTRAP") or stack.enter_context(LocalKafka()).bootstrap
        )
        redis = os.environ.get("MEANDER_REDIS_URL") or stack.enter_context(LocalRedis()).url
        stage = Stage(kafka, redis, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        stream = f"profile-{uuid.uuid4().hex[:6]}"
        stage.prepare(stream)
        runtime = stack.enter_context(Runtime.open(stage.settings(stream)))
        if args.rate and args.component == "predictor":
            _paced(runtime, stage, stream, args.events, args.rate)
        else:
            COMPONENTS[args.component](runtime, stage, stream, args.events)


if __name__ == "__main__":
    main()
