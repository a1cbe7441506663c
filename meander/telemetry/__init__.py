"""Telemetry: the Prometheus metrics every component exports, and the helpers that count them.

Every metric is defined once in :mod:`meander.telemetry.metrics`, on the process's default
registry; ``meander run`` serves it on ``metrics_port`` (:func:`serve_metrics`), the service
on its own ``/metrics`` (with :class:`RequestMetrics` counting its requests). Components count
per batch through :class:`Meter`, sample their consumer lag with :class:`LagSampler`, and report
what they publish with :func:`count_published`. Dead letters are counted by the class of their
reason (:func:`dead_letter_reason`), so that every label takes a bounded set of values.
"""

from meander.telemetry.histogram import BatchHistogram
from meander.telemetry.http import RequestMetrics
from meander.telemetry.lag import LagSampler
from meander.telemetry.meters import (
    Meter,
    Tally,
    ages,
    announce,
    count_published,
    forget_learner,
    set_model_metrics,
)
from meander.telemetry.reasons import dead_letter_reason
from meander.telemetry.server import MetricsServer, report_readiness, serve_metrics

__all__ = [
    "BatchHistogram",
    "LagSampler",
    "Meter",
    "MetricsServer",
    "RequestMetrics",
    "Tally",
    "ages",
    "announce",
    "count_published",
    "dead_letter_reason",
    "forget_learner",
    "report_readiness",
    "serve_metrics",
    "set_model_metrics",
]
