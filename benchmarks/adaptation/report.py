"""The suite's table and the targets it is held to, from the results of a run.

A row per stream: its part, its drift, each baseline's score (accuracy, or MAE for
regression), the loop's score and events per second, ARF's events per second and the loop's
speed-up over it, and drift detection where the true changes are known. Then the means and the
targets, each marked as met or not.
"""

from __future__ import annotations

from statistics import mean
from typing import Any

__all__ = ["COLUMNS", "summary", "table", "targets"]

COLUMNS = (
    ("arf10_undelayed", "ARF(10) no delay"),
    ("arf10", "ARF(10)"),
    ("hoeffding_tree", "HT"),
    ("adaptive_tree", "HAT"),
    ("linear", "linear"),
    ("bandit", "bandit"),
    ("drift_retraining", "drift retrain"),
    ("greedy", "greedy"),
)
SIMPLE = ("hoeffding_tree", "adaptive_tree", "linear")
WORST_BELOW_SIMPLE = 0.01  # no stream more than this below the best simple model
SPEEDUP = 3.0  # the loop at least this many times ARF's events per second


def table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table, one row per stream."""
    head = ["stream", "part", "drift", *(title for _, title in COLUMNS)]
    head += ["**loop**", "loop ev/s", "ARF ev/s", "speed-up", "delays", "false alarms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, row in results.items():
        loop = row["loop"]
        cells = [key, row["part"], row["drift"]]
        cells += [_score(row.get(name)) for name, _ in COLUMNS]
        cells += [
            f"**{loop['score']:.3f}**",
            f"{loop['events_per_second']:,}",
            f"{row['arf10']['events_per_second']:,}",
            f"{row['speedup']:.1f}",
            ", ".join("-" if d is None else str(d) for d in loop["delays"]) or "",
            str(len(loop["false_alarms"])) if row["known_changes"] else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _score(result: dict[str, Any] | None) -> str:
    return "" if result is None else f"{result['score']:.3f}"


def summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means over the classification streams (all, tuning, held out) and regression wins."""
    out: dict[str, Any] = {}
    classified = {k: r for k, r in results.items() if r["task"] != "regression"}
    for part in ("all", "tuning", "held_out"):
        rows = [r for r in classified.values() if part in ("all", r["part"])]
        if rows:
            names = [n for n, _ in COLUMNS if all(n in r for r in rows)] + ["loop"]
            out[f"mean_accuracy_{part}"] = {
                n: round(mean(r[n]["score"] for r in rows), 4) for n in names
            }
    return out


def targets(results: dict[str, dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """Each target: its name, whether this run meets it, and the figures that say so.

    The accuracy targets are checked twice: against the baselines run with the loop's delay
    (the same information), and against them run without delay."""
    checks: list[tuple[str, bool, str]] = []
    classified = {k: r for k, r in results.items() if r["task"] != "regression"}
    regressed = {k: r for k, r in results.items() if r["task"] == "regression"}
    for suffix, how in (("", "delayed"), ("_undelayed", "without delay")):
        if classified:
            loop = mean(r["loop"]["score"] for r in classified.values())
            arf = mean(r[f"arf10{suffix}"]["score"] for r in classified.values())
            checks.append(
                (
                    f"mean accuracy >= ARF(10)'s ({how})",
                    loop >= arf,
                    f"loop {loop:.4f}, ARF(10) {arf:.4f}",
                )
            )
            short = {
                k: round(max(r[f"{n}{suffix}"]["score"] for n in SIMPLE) - r["loop"]["score"], 4)
                for k, r in classified.items()
            }
            worst = max(short, key=lambda k: short[k])
            checks.append(
                (
                    f"no stream more than {WORST_BELOW_SIMPLE} below the best of HT, HAT, "
                    f"linear ({how})",
                    short[worst] <= WORST_BELOW_SIMPLE,
                    f"largest shortfall {short[worst]:+.4f} on {worst}",
                )
            )
        if regressed:
            worse = [
                k for k, r in regressed.items() if r["loop"]["score"] > r[f"arf10{suffix}"]["score"]
            ]
            checks.append(
                (
                    f"regression MAE <= ARFRegressor's on every stream ({how})",
                    not worse,
                    f"above on {', '.join(worse)}" if worse else f"all {len(regressed)} streams",
                )
            )
    slow = {k: r["speedup"] for k, r in results.items() if r["speedup"] < SPEEDUP}
    lowest = min(results, key=lambda k: results[k]["speedup"])
    checks.append(
        (
            f"loop >= {SPEEDUP:g}x ARF's events/s on every stream",
            not slow,
            f"lowest {results[lowest]['speedup']:.1f}x on {lowest}",
        )
    )
    return checks
