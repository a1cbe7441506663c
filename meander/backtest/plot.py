"""The picture of a backtest: the served champion's rolling score, and where the loop acted.

The curve is the mean score of the champion's answers over the last ``window`` labelled rows
(accuracy, or MAE for regression), plotted at each row of the file; vertical lines mark the
rows where a concept drift was detected (red, dashed), a challenger was promoted (green) and
a champion rolled back (orange, dotted). It is drawn with matplotlib's Agg canvas, so no
display is needed and no global pyplot state is touched.

>>> scores = [(i, float(i % 3 != 0)) for i in range(1_000)]
>>> curve = rolling(scores, window=500)
>>> int(curve.index[0]), round(float(curve.iloc[-1]), 3)
(49, 0.666)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from meander.backtest.report import Report

__all__ = ["WINDOW", "plot_report", "rolling"]

WINDOW = 500
MARKERS = (
    ("drifts", "concept drift", "tab:red", "--"),
    ("promotions", "promotion", "tab:green", "-"),
    ("rolled_back", "rollback", "tab:orange", ":"),
)


def rolling(scores: Sequence[tuple[int, float]], window: int = WINDOW) -> pd.Series[float]:
    """The mean score over the last ``window`` labelled rows (once 50 are in), by row index."""
    series = pd.Series([s for _, s in scores], index=[i for i, _ in scores], dtype=float)
    return series.rolling(window, min_periods=min(window, 50)).mean().dropna()


def plot_report(report: Report, path: str | Path, *, window: int = WINDOW) -> Path:
    """Write the PNG of ``report`` to ``path``; returns the path."""
    data = report.data
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    curve = rolling(report.scores, window)
    label = "MAE" if report.metric == "mae" else "accuracy"
    axes.plot(curve.index, curve.to_numpy(), color="tab:blue", linewidth=1.2, label=label)
    for key, name, colour, style in MARKERS:
        for n, row in enumerate(data[key]):
            axes.axvline(
                row, color=colour, linestyle=style, linewidth=1, label=name if not n else None
            )
    axes.set_xlim(0, max(data["events"] - 1, 1))
    if report.metric == "accuracy":
        axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("event (row of the file)")
    axes.set_ylabel(f"rolling {label} ({window} labels)")
    axes.set_title(
        f"{data['stream']}: served champion, {data['events']} events, "
        f"label delay {data['label_delay']}"
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=110)
    return path
