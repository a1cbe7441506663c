"""Run the hot-path benchmark: throughput, learner pace, latency under load, memory.

``python -m benchmarks --only hotpath [--quick] [--runs N] [--events N] [--memory-events N]``;
every figure is measured in each of ``--runs`` runs (3 by default), each run on streams of its
own, and given as the runs' values with their least, median and greatest. The machine, and per
run the load averages and how busy the CPUs were, are recorded beside them. Writes
artifacts/bench/hotpath.json and hotpath.png, and prints each figure with its command.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import ExitStack
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from benchmarks.hotpath import bare, latency, learner, machine, memory, report, throughput, warm
from benchmarks.hotpath.stage import MODEL, Stage
from benchmarks.hotpath.summary import LOADS, PARTS, say_summary, summary
from meander.infra.kafka import LocalKafka
from meander.infra.redis import LocalRedis

__all__ = ["main"]

EVENTS = 200_000
QUICK_EVENTS = 20_000
MEMORY_EVENTS = 1_000_000
RUNS = 3


def main(
    events: int | None = None,
    *,
    quick: bool = False,
    memory_events: int | None = None,
    runs: int = RUNS,
    warm_up: int = warm.ROUNDS,
) -> dict[str, Any]:
    """Run every part ``runs`` times on one broker and one Redis, warmed up first with
    ``warm_up`` whole runs, not kept (:mod:`benchmarks.hotpath.warm`); returns what it writes
    to hotpath.json."""
    n = events or (QUICK_EVENTS if quick else EVENTS)
    command = "python -m benchmarks --only hotpath" + (" --quick" if quick else "")
    if events:
        command += f" --events {events}"
    results: dict[str, Any] = {
        "command": command,
        "machine": machine.describe(),
        "measuring_client": latency.MEASURING_CLIENT,  # paced producer and reader
        "paced_in_flight": latency.PACED_IN_FLIGHT,  # its requests awaiting an answer, at most
        "model": MODEL,
        "quick": quick,
        "events": n,
        "runs": [],
    }
    with ExitStack() as stack:
        broker = (
            None if "MEANDER_KAFKA_BOOTSTRAP" in os.environ else stack.enter_context(LocalKafka())
        )
        kafka = os.environ["MEANDER_KAFKA_BOOTSTRAP"] if broker is None else broker.bootstrap
        redis = os.environ.get("MEANDER_REDIS_URL") or stack.enter_context(LocalRedis()).url
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        stage = Stage(kafka, redis, scratch, None if broker is None else broker.pid)
        try:
            warmed = results["broker_warm_up"] = (
                warm.warm_up(stage, warm_up, lambda: _warm_run(stage, command)) if warm_up else None
            )
            print(warm.said(warmed), flush=True)
            for index in range(runs):
                run: dict[str, Any] = {"run": index + 1}
                results["runs"].append(run)
                print(f"run {index + 1} of {runs}", flush=True)
                with machine.load(run):
                    try:
                        _parts(stage, uuid.uuid4().hex[:6], n, quick, memory_events, command, run)
                    except Exception as error:
                        # Recorded beside what the run did measure; the benchmark still fails.
                        run["failed"] = f"{type(error).__name__}: {error}"
                        raise
                print(
                    f"    load average {run['load_before'][0]} -> {run['load_after'][0]}, "
                    f"CPUs {run['cpu_busy_share']:.0%} busy",
                    flush=True,
                )
        finally:
            results["summary"] = summary(results["runs"])
            report.write(results)
            report.plot(results)
            say_summary(results["summary"], command)
            for run in results["runs"]:
                if "failed" in run:
                    print(f"run {run['run']} FAILED: {run['failed']}", flush=True)
            print(f"written to {report.JSON} and {report.PNG}")
    return results


def _warm_run(stage: Stage, command: str) -> None:
    """A whole run of every part, quick, on :data:`warm.EVENTS` events: the broker's warm-up."""
    _parts(stage, f"warm-{uuid.uuid4().hex[:6]}", warm.EVENTS, True, None, command, {})


def _say(figure: str, command: str) -> None:
    print(f"{figure}\n    reproduce: {command}", flush=True)


def _parts(
    stage: Stage,
    run: str,
    n: int,
    quick: bool,
    memory_events: int | None,
    command: str,
    results: dict[str, Any],
) -> None:
    stream = f"hotpath-{run}"
    stage.prepare(stream)
    stage.publish_events(stream, 0, n)
    rates: dict[str, Any] = {"events": n}
    results["throughput"] = rates
    for name, run_one in (
        ("ceiling", throughput.ceiling),
        ("naive", throughput.naive),
        ("meander", throughput.meander),
    ):
        rates[name] = run_one(stage, stream, n)
        _say(f"throughput {name}: {rates[name]['events_per_second']:,} events/s", command)
    meander, naive, ceiling = (
        rates[k]["events_per_second"] for k in ("meander", "naive", "ceiling")
    )
    rates["meander_over_naive"] = round(meander / naive, 2)
    rates["meander_over_ceiling"] = round(meander / ceiling, 2)
    _say(
        f"ratios: meander/naive {rates['meander_over_naive']}, "
        f"meander/ceiling {rates['meander_over_ceiling']}",
        command,
    )
    # Exactly once, on events of its own (the predictor's group has read the others).
    once = f"{stream}-once"
    stage.prepare(once)
    stage.publish_events(once, 0, n)
    rates["meander_exactly_once"] = throughput.meander_exactly_once(stage, once, n)
    exactly = rates["meander_exactly_once"]["events_per_second"]
    rates["exactly_once_over_at_least_once"] = round(exactly / meander, 2)
    _say(
        f"throughput meander exactly once: {exactly:,} events/s, "
        f"{rates['exactly_once_over_at_least_once']} of at least once",
        command,
    )
    fast = find_spec("confluent_kafka") is not None
    if fast:
        _fast_predictor(stage, f"{stream}-fast", n, command, rates)
    else:
        print("confluent-kafka parts: not measured (pip install -e '.[fast]')", flush=True)

    results["learner"] = _learner(stage, stream, n, meander, {})
    _say_learner("learner", results["learner"], command)
    if fast:
        results["learner_fast"] = _learner(
            stage, f"{stream}-fast", n, rates["meander_fast"]["events_per_second"], FAST
        )
        _say_learner("learner on confluent-kafka", results["learner_fast"], command)

    latency_stream = f"hotpath-{run}-latency"
    stage.prepare(latency_stream)
    seconds, drain = (3.0, 15.0) if quick else (15.0, 60.0)
    results["latency"] = latency.latencies(stage, latency_stream, LOADS, seconds, drain)
    _say_latencies("latency", results["latency"], command)

    # The same offered loads and measurement with a bare loop in the predictor's place (the
    # part of each percentile that is the client's and the broker's), and with none: the
    # measuring reader on the paced producer's own topic (the measurement's own part).
    if fast:
        stage.prepare(f"{latency_stream}-fast")
        results["latency_fast"] = latency.latencies(
            stage, f"{latency_stream}-fast", LOADS, seconds, drain, FAST
        )
        _say_latencies(PARTS["latency_fast"], results["latency_fast"], command)
    for part, loop in (
        ("latency_bare", bare.copy_loop),
        ("latency_confluent", bare.confluent_loop),
        ("latency_direct", None),
    ):
        if loop is bare.confluent_loop and find_spec("confluent_kafka") is None:
            print("confluent-kafka loop: not measured (pip install -e '.[bench]')", flush=True)
            continue
        results[part] = bare.bare_latencies(stage, LOADS, seconds, drain, loop)
        for load in results[part]:
            cpu = load.get("loop_cpu_us_per_event")
            _say(
                f"{PARTS[part]} at {load['offered_per_second']:,.0f} events/s offered "
                f"({load['achieved_per_second']:,} achieved): p50 {load['p50_ms']} ms, "
                f"p95 {load['p95_ms']} ms, p99 {load['p99_ms']} ms, "
                f"{load['missing_after_drain']} missing after the drain"
                + ("" if cpu is None else f"; loop CPU {cpu} us per event"),
                command,
            )

    if quick and memory_events is None:
        return
    total = memory_events or MEMORY_EVENTS
    for part, who, env in (
        ("memory", "predictor", {}),
        ("memory_fast", "on confluent-kafka", FAST),
    ):
        if env and not fast:
            continue
        memory_stream = f"hotpath-{run}-{part}"
        stage.prepare(memory_stream)
        found = results[part] = memory.resident_memory(stage, memory_stream, total, env=env)
        _say(
            f"{who} RSS over {total:,} events: {found['warm_up_rss_mib']} MiB warm, "
            f"{found['end_rss_mib']} MiB at the end (peak {found['peak_rss_mib']} MiB)",
            f"python -m benchmarks --only hotpath --memory-events {total}",
        )


FAST = {"MEANDER_KAFKA_CLIENT": "confluent-kafka"}
"""The settings of the parts that run meander's components on the confluent-kafka client."""


def _fast_predictor(stage: Stage, stream: str, n: int, command: str, rates: dict[str, Any]) -> None:
    """The predictor's throughput on confluent-kafka, on events of its own, beside the ceiling
    and the naive loop (both on kafka-python) it is compared with."""
    stage.prepare(stream)
    stage.publish_events(stream, 0, n)
    rates["meander_fast"] = throughput.meander(stage, stream, n, env=FAST)
    fast = rates["meander_fast"]["events_per_second"]
    rates["meander_fast_over_naive"] = round(fast / rates["naive"]["events_per_second"], 2)
    rates["meander_fast_over_ceiling"] = round(fast / rates["ceiling"]["events_per_second"], 2)
    _say(
        f"throughput meander on confluent-kafka: {fast:,} events/s; /naive "
        f"{rates['meander_fast_over_naive']}, /ceiling {rates['meander_fast_over_ceiling']}",
        command,
    )
    # Exactly once on this client too, on events of its own, beside its at-least-once rate.
    once = f"{stream}-once"
    stage.prepare(once)
    stage.publish_events(once, 0, n)
    rates["meander_fast_exactly_once"] = throughput.meander_exactly_once(stage, once, n, env=FAST)
    exactly = rates["meander_fast_exactly_once"]["events_per_second"]
    rates["fast_exactly_once_over_at_least_once"] = round(exactly / fast, 2)
    _say(
        f"throughput meander on confluent-kafka exactly once: {exactly:,} events/s, "
        f"{rates['fast_exactly_once_over_at_least_once']} of at least once",
        command,
    )


def _learner(
    stage: Stage, stream: str, n: int, predictor: float, env: dict[str, str]
) -> dict[str, Any]:
    """The learner's pace on ``stream``'s labels, and over ``predictor``'s rate (events/s)."""
    found = learner.feedback(stage, stream, n, env=env)
    pace, whole = found["feedback_per_second"], found["feedback_per_second_with_catch_up"]
    found["over_predictor"] = round(pace / predictor, 2) if pace else None
    found["with_catch_up_over_predictor"] = round(whole / predictor, 2) if whole else None
    return found


def _say_learner(who: str, found: dict[str, Any], command: str) -> None:
    # None: every label was joined before a second count (a short run, as the warm-up's).
    pace, whole = found["feedback_per_second"], found["feedback_per_second_with_catch_up"]
    _say(
        f"{who}: {pace if pace is None else format(pace, ',')} labels/s, "
        f"{found['over_predictor']} times the predictor's rate (1 or more keeps up); with its "
        f"catch-up on events and predictions {whole if whole is None else format(whole, ',')} "
        f"labels/s, {found['with_catch_up_over_predictor']} times",
        command,
    )


def _say_latencies(who: str, loads: list[dict[str, Any]], command: str) -> None:
    for load in loads:
        _say(
            f"{who} at {load['offered_per_second']:,.0f} events/s offered "
            f"({load['achieved_per_second']:,} achieved): p50 {load['p50_ms']} ms, "
            f"p95 {load['p95_ms']} ms, p99 {load['p99_ms']} ms, "
            f"{load['missing_after_drain']} missing after the drain; predictor CPU "
            f"{load['predictor_cpu_us_per_event']} us per event",
            command,
        )
