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
) -> dict[str, Any]:
    keys = list(streams or (QUICK if quick else CATALOGUE))
    events = events or (4_000 if quick else 20_000)
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for key in keys:
        results[key] = run_stream(key, events)
        loop = results[key]["loop"]
        print(
            f"{key}: loop {loop['score']:.4f} at {loop['events_per_second']:,}/s, ARF(10) "
            f"{results[key]['arf10']['score']:.4f}, {results[key]['speedup']}x",
            flush=True,
        )
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "events": events,
        "streams": results,
        "summary": summary(results),
        "targets": [
            {"target": name, "met": met, "figures": figures}
            for name, met, figures in targets(results)
        ],
    }
    if not quick:
        out["price"] = price.price()
    out["seconds"] = round(time.monotonic() - started)
    print(table(results))
    print(json.dumps(out["summary"], indent=1))
    for name, met, figures in targets(results):
        print(f"{'met' if met else 'NOT MET'}: {name} ({figures})")
    if "price" in out:
        print(f"ARF(10) as the champion: {out['price']['times_plain']}x its plain cost")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return out
