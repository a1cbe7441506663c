"""The adaptation benchmark: the loop with no configuration against River's models.

``python -m benchmarks --only adaptation [--quick] [--streams a,b] [--events N]`` runs every
stream of :mod:`benchmarks.adaptation.streams` through each baseline
(:mod:`~benchmarks.adaptation.baselines`) and through the loop
(:mod:`~benchmarks.adaptation.served`), then the price of an expensive champion
(:mod:`~benchmarks.adaptation.price`). It prints the table and the targets, and writes
artifacts/bench/adaptation.json; docs/benchmarks.md explains the figures.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from benchmarks.adaptation import price, served
from benchmarks.adaptation.baselines import BASELINES, prequential
from benchmarks.adaptation.report import summary, table, targets
from benchmarks.adaptation.streams import CATALOGUE, QUICK, build

__all__ = ["main", "run_stream"]

OUT = Path("artifacts/bench/adaptation.json")
UNDELAYED = ("arf10", "hoeffding_tree", "adaptive_tree", "linear")  # also run without delay


def run_stream(key: str, events: int) -> dict[str, Any]:
    """Every baseline and the loop on stream ``key``."""
    bench = build(key, events=events)
    row: dict[str, Any] = {
        "task": bench.task,
        "part": bench.part,
        "drift": bench.drift,
        "about": bench.about,
        "events": len(bench.samples),
        "known_changes": bench.drifts,
    }
    for name, make in BASELINES[bench.task].items():
        row[name] = prequential(make(bench), bench, delay=served.CHUNK)
        if name in UNDELAYED:
            row[f"{name}_undelayed"] = prequential(make(bench), bench)
    row["loop"] = served.run(bench)
    row["speedup"] = round(row["loop"]["events_per_second"] / row["arf10"]["events_per_second"], 1)
    return row


def main(
    *,
    quick: bool = False,
    streams: Sequence[str] | None = None,
    events: int | None = None,
    out_path: Path = OUT,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run the suite; ``jobs`` streams at a time, each in its own process (events per second
    are of each process's CPU time, so they do not depend on how many run beside it)."""
    keys = list(streams or (QUICK if quick else CATALOGUE))
    events = events or (4_000 if quick else 20_000)
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(jobs) if jobs > 1 else nullcontext() as pool:
        pricing = pool.submit(price.price) if pool and not quick else None
        rows = (
            pool.map(run_stream, keys, [events] * len(keys))
            if pool
            else map(run_stream, keys, [events] * len(keys))
        )
        for key, row in zip(keys, rows, strict=True):
            results[key] = row
            print(
                f"{key}: loop {row['loop']['score']:.4f} at {row['loop']['events_per_second']:,}/s,"
                f" ARF(10) {row['arf10']['score']:.4f}, {row['speedup']}x",
                flush=True,
            )
        costs = pricing.result() if pricing else None
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "events": events,
        "jobs": jobs,
        "streams": results,
        "summary": summary(results),
        "targets": [
            {"target": name, "met": met, "figures": figures}
            for name, met, figures in targets(results)
        ],
    }
    if not quick:
        out["price"] = costs or price.price()
    out["seconds"] = round(time.monotonic() - started)
    print(table(results))
    print(json.dumps(out["summary"], indent=1))
    for name, met, figures in targets(results):
        print(f"{'met' if met else 'NOT MET'}: {name} ({figures})")
    if "price" in out:
        cost = out["price"]
        low, high = cost["times_plain_range"]
        print(
            f"ARF(10) as the champion: {cost['times_plain']}x its plain cost (median of"
            f" {len(cost['pairs'])} interleaved pairs, {low}-{high})"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return out
