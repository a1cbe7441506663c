"""What an expensive model costs in the loop, against the same model run plainly.

One Agrawal concept (nothing drifts), ``ARFClassifier(n_models=10)`` as the champion and no
search space, so the champion is the only model the loop runs; the plain run predicts and
learns the same samples. The ratio of their events per second is the loop's price for that
model: its snapshots for the predictors, its checkpoints, its scoring and its learning.

ARF(10) alone ran at 574, 627 and 714 events/s back to back on a quiet machine: a ratio of two
single runs is mostly that noise. So the plain run and the loop run in pairs, one right after
the other, and the price is the median of the pairs' ratios, reported with their range.

>>> result = price(events=150, pairs=2)
>>> len(result["pairs"]), result["times_plain_range"][0] <= result["times_plain"]
(2, True)
"""

from __future__ import annotations

from statistics import median
from typing import Any

from river import forest

from benchmarks.adaptation import served
from benchmarks.adaptation.baselines import prequential
from benchmarks.adaptation.streams import BenchStream
from meander.producers.synthetic import synthetic

__all__ = ["price"]

MODEL = "forest.ARFClassifier(n_models=10, seed=42)"
PAIRS = 3


def price(events: int = 10_000, pairs: int = PAIRS) -> dict[str, Any]:
    """``pairs`` plain runs, each followed by a loop run over the same events; the median and
    the range of the pairs' ratios."""
    source = synthetic("agrawal", drift_every=events * 10, seed=42)  # no change in the run
    bench = BenchStream(
        "arf_champion",
        "binary",
        source.features(),
        list(source.samples(events)),
        [],
        "none",
        "held_out",
        "one Agrawal concept",
    )
    runs = []
    for _ in range(pairs):
        plain = prequential(forest.ARFClassifier(n_models=10, seed=42), bench)
        loop = served.run(bench, model=MODEL, candidates=[], learning={"tune_first": False})
        runs.append(
            {
                "plain": plain["events_per_second"],
                "loop": loop["events_per_second"],
                "times_plain": round(plain["events_per_second"] / loop["events_per_second"], 2),
                "scores": [plain["score"], loop["score"]],
            }
        )
    ratios = [run["times_plain"] for run in runs]
    return {
        "events": events,
        "pairs": runs,
        "times_plain": round(median(ratios), 2),
        "times_plain_range": [min(ratios), max(ratios)],
    }
