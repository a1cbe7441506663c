"""The hot path on real Kafka: meander's predictor beside a bare loop and the tutorial loop.

Throughput of the three on the same events, the learner's labels per second, end-to-end latency
at fixed offered loads, and the predictor's memory over a long run; ``run.main`` runs them all.
"""

from benchmarks.hotpath.run import main

__all__ = ["main"]
