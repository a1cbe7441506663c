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
TARGET_P99_MS = 25.0


def write(results: dict[str, Any], path: Path = JSON) -> None:
    """Write ``results`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot(results: dict[str, Any], path: Path = PNG) -> None:
    """Throughput medians with the runs' range, latency percentiles per offered load (one line
    per run), and the predictor's RSS series of the first run that measured it. A part that
    failed is not drawn; with no latency at all, its panel says so."""
    figure, (bars, lines, memory) = plt.subplots(1, 3, figsize=(16, 4.5))
    runs = results.get("runs", [])
    found = results.get("summary", {})
    names = [n for n in ("ceiling", "naive", "meander") if f"{n} events/s" in found]
    medians = [found[f"{n} events/s"]["median"] or 0 for n in names]
    low = [m - (found[f"{n} events/s"]["min"] or m) for n, m in zip(names, medians, strict=True)]
    high = [(found[f"{n} events/s"]["max"] or m) - m for n, m in zip(names, medians, strict=True)]
    bars.bar(
        names, medians, yerr=[low, high], color=["grey", "tab:orange", "tab:blue"][: len(names)]
    )
    for x, value in enumerate(medians):
        bars.annotate(f"{value:,.0f}", (x, value), ha="center", va="bottom")
    events = results.get("events", "?")
    bars.set_title(f"Throughput, median of {len(runs)} run(s) ({events:,} events)")
    bars.set_ylabel("events / s")
    drawn = False
    for run in runs:
        for part, who, marker in (
            ("latency", "", "o"),
            ("latency_fast", " predictor on confluent-kafka", "^"),
            ("latency_bare", " bare loop", "x"),
            ("latency_confluent", " confluent-kafka loop", "s"),
            ("latency_direct", " no loop", "."),
        ):
            # A part that failed left nothing (or nothing whole) to draw.
            loads = [load for load in run.get(part, []) if load.get("p99_ms", 0) > 0]
            drawn = drawn or bool(loads)
            for q, style in (("p50_ms", ":"), ("p99_ms", "-")):
                lines.plot(
                    [load["offered_per_second"] for load in loads],
                    [load[q] for load in loads],
                    style,
                    marker=marker,
                    label=f"run {run['run']}{who} {q.removesuffix('_ms')}",
                )
    if drawn:
        lines.axhline(TARGET_P99_MS, color="grey", linestyle="--", linewidth=1, label="p99 target")
        lines.set_xscale("log")
        lines.set_yscale("log")
        lines.set_xlabel("offered events / s")
        lines.set_ylabel("publish to prediction readable (ms)")
        lines.set_title("End-to-end latency")
        lines.legend(fontsize="small")
    else:
        lines.axis("off")
        lines.set_title("End-to-end latency: not measured")
    series: list[dict[str, Any]] = next(
        (run["memory"]["series"] for run in runs if run.get("memory")), []
    )
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
