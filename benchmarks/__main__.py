"""Run every benchmark: ``python -m benchmarks [--events N] [--only NAME ...] [--no-kafka]``.

Each writes its JSON to artifacts/bench/; docs/benchmarks.md says what they measure.
"""

from __future__ import annotations

import argparse

from benchmarks import bus, codec, loop, service

BENCHMARKS = ("codec", "bus", "loop", "service")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--events", type=int, default=40_000, help="events per stream or run")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--no-kafka", action="store_true", help="skip the runs on real Kafka")
    args = parser.parse_args()
    if "codec" in args.only:
        codec.main(args.events)
    if "bus" in args.only:
        bus.main(args.events)
    if "loop" in args.only:
        loop.main(args.events, kafka=not args.no_kafka, kafka_events=args.events // 2)
    if "service" in args.only and not args.no_kafka:
        service.main()


if __name__ == "__main__":
    main()
