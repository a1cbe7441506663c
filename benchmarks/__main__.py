"""Run every benchmark: ``python -m benchmarks [--events N] [--only NAME ...] [--no-kafka]``.

``--quick`` makes each run of the hot-path benchmark under a minute and the adaptation benchmark
a run of five short streams; ``--runs N`` repeats the hot path's figures, and the recovery
benchmark's restarts of each component, N times (3 by default);
``--memory-events N`` sets the length of its memory run; ``--streams a,b`` picks the adaptation
benchmark's streams and ``--jobs N`` runs N of them at a time.

Each writes its JSON to artifacts/bench/; docs/benchmarks.md says what they measure.
"""

from __future__ import annotations

import argparse

from benchmarks import adaptation, bus, codec, hotpath, loop, recovery, service

BENCHMARKS = ("codec", "bus", "loop", "service", "hotpath", "recovery", "adaptation")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per stream or run (default 40,000; hotpath: 200,000, or 20,000 with "
        "--quick; adaptation: 20,000 per synthetic stream, or 4,000 with --quick)",
    )
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--no-kafka", action="store_true", help="skip the runs on real Kafka")
    parser.add_argument(
        "--quick", action="store_true", help="hotpath: a run under a minute; adaptation: 5 streams"
    )
    parser.add_argument(
        "--streams",
        type=lambda text: [key for key in text.split(",") if key],
        default=None,
        help="adaptation: the streams to run, comma-separated (default: all of them)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="adaptation: streams run at a time, one per process"
    )
    parser.add_argument(
        "--memory-events", type=int, default=None, help="hotpath: events of the memory run"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="hotpath: runs of every figure; recovery: restarts of each component (default 3)",
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=1,
        help="hotpath: whole runs (5,000 events, not kept) that warm the broker before the first "
        "run, with the cold and the warmed broker measured and reported (default 1, about two "
        "minutes; 0: none)",
    )
    args = parser.parse_args()
    events = args.events or 40_000
    if "codec" in args.only:
        codec.main(events)
    if "bus" in args.only:
        bus.main(events)
    if "loop" in args.only:
        loop.main(events, kafka=not args.no_kafka, kafka_events=events // 2)
    if "service" in args.only and not args.no_kafka:
        service.main()
    if "hotpath" in args.only and not args.no_kafka:
        hotpath.main(
            args.events,
            quick=args.quick,
            memory_events=args.memory_events,
            runs=args.runs,
            warm_up=args.warm_up,
        )
    if "recovery" in args.only and not args.no_kafka:
        recovery.main(runs=args.runs)
    if "adaptation" in args.only:
        adaptation.main(quick=args.quick, streams=args.streams, events=args.events, jobs=args.jobs)


if __name__ == "__main__":
    main()
