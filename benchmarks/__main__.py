"""Run every benchmark: ``python -m benchmarks [--events N]``."""

from __future__ import annotations

import argparse

from benchmarks import bus


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    bus.main(args.events)


if __name__ == "__main__":
    main()
