"""A learner alone in its own process, for the crash-recovery test.

Usage: ``python tests/integration/learner_process.py CONFIG LABELS PROBE OUT [options]``

It reads the settings from CONFIG (connections and the signing key from ``MEANDER_*`` variables),
runs a :class:`~meander.consumers.learner.learner.Learner` on the first configured stream until it
has learned LABELS labels, checkpoints, and pickles to OUT what the test compares: the labels it
resumed from, the labels it ended with, and the champion's answers (prediction and probabilities) on
the feature dicts pickled in PROBE. ``--batch`` is the most labels a step takes; ``--pause`` sleeps
between steps so that a test can kill it midway. It gives up with exit code 3 after ``--deadline``
seconds.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from meander.config import load_settings
from meander.consumers.learner.learner import Learner
from meander.models.inference import clean, predict_one
from meander.runtime import Runtime

GAVE_UP = 3


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("labels", type=int, help="stop once this many labels are learned")
    parser.add_argument("probe", type=Path, help="a pickled list of feature dicts")
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, default=500, help="most labels per step")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between steps")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    settings = load_settings(args.config)
    stream = settings.streams[0]
    probe: list[dict[str, Any]] = pickle.loads(args.probe.read_bytes())
    with Runtime.open(settings) as runtime:
        learner = Learner(runtime, stream, batch=args.batch)
        start = learner.checkpoints.load()
        resumed_from = 0 if start is None else start.labels
        deadline = time.monotonic() + args.deadline
        while learner.state is None or learner.state.labels < args.labels:
            if time.monotonic() > deadline:
                learned = 0 if learner.state is None else learner.state.labels
                print(f"gave up: {learned} of {args.labels} labels learned", file=sys.stderr)
                return GAVE_UP
            learner.step(0.5)
            time.sleep(args.pause)
        learner.checkpoint()
        state = learner.state
        assert state is not None
        champion = state.models[state.champion]
        answers = [predict_one(champion, clean(x), stream.task) for x in probe]
        learner.close()
    result = {"resumed_from": resumed_from, "labels": state.labels, "answers": answers}
    args.out.write_bytes(pickle.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
