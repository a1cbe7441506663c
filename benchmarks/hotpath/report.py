"""The hot-path results on disk: artifacts/bench/hotpath.json and a plot beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the plot only goes to a file
import matplotlib.pyplot as plt

__all__ = ["JSON", "PNG", "plot", "write"]

JSON = Path("artifacts/bench/hotpath.json")
PNG = Path("artifacts/bench/hotpath.png")


def write(results: dict[str, Any], path: Path = JSON) -> None:
    """Write ``results`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot(results: dict[str, Any], path: Path = PNG) -> None:
    """Throughput bars, latency percentiles per offered load, and the predictor's RSS series."""
    figure, (bars, lines, memory) = plt.subplots(1, 3, figsize=(16, 4.5))
    throughput = results.get("throughput", {})
    names = [n for n in ("ceiling", "naive", "meander") if n in throughput]
    rates = [throughput[n]["events_per_second"] or 0 for n in names]
    bars.bar(names, rates, color=["grey", "tab:orange", "tab:blue"][: len(names)])
    for x, value in enumerate(rates):
        bars.annotate(f"{value:,}", (x, value), ha="center", va="bottom")
    bars.set_title(f"Throughput ({throughput.get('events', '?'):,} events)")
    bars.set_ylabel("events / s")
    loads = results.get("latency", [])
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        lines.plot(
            [load["offered_per_second"] for load in loads],
            [load[q] for load in loads],
            marker="o",
            label=q.removesuffix("_ms"),
        )
    lines.set_xscale("log")
    lines.set_yscale("log")
    lines.set_xlabel("offered events / s")
    lines.set_ylabel("publish to prediction readable (ms)")
    lines.set_title("End-to-end latency")
    if loads:
        lines.legend()
    series = results.get("memory", {}).get("series", [])
    if series:
        memory.plot([s["predictions"] for s in series], [s["rss_mib"] for s in series])
        memory.set_xlabel("predictions")
        memory.set_ylabel("predictor RSS (MiB)")
        memory.set_ylim(bottom=0)
        memory.set_title("Predictor memory")
    else:
        memory.axis("off")
        memory.set_title("Predictor memory: not run (--quick)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
