"""What an expensive model costs in the loop, against the same model run plainly.

One Agrawal concept (nothing drifts), ``ARFClassifier(n_models=10)`` as the champion and no
search space, so the champion is the only model the loop runs; the plain run predicts and
learns the same samples. The ratio of their events per second is the loop's price for that
model: its snapshots for the predictors, its checkpoints, its scoring and its learning.
"""

from __future__ import annotations

from typing import Any

from river import forest

from benchmarks.adaptation import served
from benchmarks.adaptation.baselines import prequential
from benchmarks.adaptation.streams import BenchStream
from meander.producers.synthetic import synthetic

__all__ = ["price"]

MODEL = "forest.ARFClassifier(n_models=10, seed=42)"


def price(events: int = 10_000) -> dict[str, Any]:
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
    plain = prequential(forest.ARFClassifier(n_models=10, seed=42), bench)
    loop = served.run(
        bench,
        model=MODEL,
        candidates=[],
        learning={"tune_first": False},
    )
    return {
        "events": events,
        "plain": plain,
        "loop": {k: loop[k] for k in ("score", "events_per_second")},
        "times_plain": round(plain["events_per_second"] / loop["events_per_second"], 2),
    }
